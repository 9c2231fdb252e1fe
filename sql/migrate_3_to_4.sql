-- Schema 3 to schema 4: a line paid late belongs to an earlier year (lines.year_of_matter), which
-- joins the key (a project's row of an earlier year and its row of this year are two lines of one run).
-- Every line recorded before is of its own year. Run inside one transaction.
create table lines_4 (
    year          integer not null,
    region        varchar not null,
    applicant_id  varchar not null,
    clause_id     varchar not null,
    matter_id     varchar not null,
    installment   integer not null,
    installments  integer not null,
    award_fen     bigint not null,
    payable_fen   bigint not null,
    dated_on      date,
    year_of_matter integer not null,
    primary key (year, region, applicant_id, clause_id, matter_id, year_of_matter, installment)
);
insert into lines_4
select year, region, applicant_id, clause_id, matter_id, installment, installments, award_fen, payable_fen,
       dated_on, year as year_of_matter
from lines;
drop table lines;
alter table lines_4 rename to lines;
