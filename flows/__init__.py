from disburse import offline

offline.apply()
