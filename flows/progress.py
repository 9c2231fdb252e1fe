"""What a run is doing, told as it happens: to Prefect's run log, and to whoever listens in this process.

``reported(name, fn)`` wraps one stage of ``disburse.job``: before it runs, every
listener hears (stage, region); after, Prefect's run logger gets one INFO line
with the stage's ids and counts. Logs carry ids and counts only, never ledger
values, names or money amounts (a count of lines is fine, a total is not).

Listeners are per process (a served deployment runs each flow run in a process
of its own): the command line shows a status line on a terminal, the yearly
flow gathers totals per clause for its artifacts.
"""

from __future__ import annotations

import functools
import inspect
import logging
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol

_LISTENERS: list["Listener"] = []
_fallback = logging.getLogger("disburse")


class Listener(Protocol):
    def started(self, stage: str, region: str | None) -> None: ...

    def finished(self, stage: str, region: str | None, result: Any) -> None: ...


@contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    """Tell LISTENER about every stage that runs in this process until the block ends."""
    _LISTENERS.append(listener)
    try:
        yield listener
    finally:
        _LISTENERS.remove(listener)


def _tell(event: str, *args: Any) -> None:
    # The listeners are read here, in a module-level function, not in the stage wrapper: a served
    # run pickles the wrapper by value (with copies of the globals it names) into a process of its
    # own, while this function is pickled by reference and so sees the listeners of that process.
    for listener in list(_LISTENERS):
        getattr(listener, event)(*args)


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's logger for the current flow or task run; outside a run, a plain logger."""
    from prefect import get_run_logger  # here, not at the top: `disburse run --help` never loads Prefect
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return _fallback


def counts(result: Any) -> dict[str, Any]:
    """The ids and counts a stage's result may show in a log line (never values or amounts)."""
    raw = getattr(result, "raw", None)
    if isinstance(raw, dict):  # ingest: job.Inputs
        catalogue = getattr(result, "catalogue", None)
        return {"ledger_rows": {name: df.height for name, df in raw.items()},
                "regions": len(getattr(catalogue, "regions", ())),
                "clauses": len(getattr(catalogue, "rules", ())),
                "rules_fingerprint": getattr(catalogue, "fingerprint", None),
                "params_fingerprint": getattr(getattr(result, "params", None), "fingerprint", None)}
    accepted = getattr(result, "accepted", None)
    if isinstance(accepted, dict):  # validate: transforms.validate.Validated
        return {"accepted_rows": {name: df.height for name, df in accepted.items()},
                "rejected_faults": result.rejected.height}
    if hasattr(result, "history") and hasattr(result, "recovered"):  # job.PaidBefore
        return {"history_rows": result.history.height, "recovered_rows": result.recovered.height}
    if hasattr(result, "lines") and hasattr(result, "clawbacks"):  # transforms.region.RegionResult
        return {"region": result.region, "lines": result.lines.height,
                "payable_lines": result.disbursements.height, "clawbacks": result.clawbacks.height}
    if isinstance(result, dict) and "run_id" in result:  # the manifest
        return {"run_id": result["run_id"], "year": result.get("year"),
                "regions": result.get("regions_in_this_run")}
    return {}


def _region_of(signature: inspect.Signature, args: tuple, kwargs: dict) -> str | None:
    try:
        region = signature.bind_partial(*args, **kwargs).arguments.get("region")
    except TypeError:
        return None
    return region if isinstance(region, str) else None


def reported(name: str, fn: Callable) -> Callable:
    """FN as a stage called NAME: listeners hear it start and end; the run log gets its counts."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def stage(*args, **kwargs):
        region = _region_of(signature, args, kwargs)
        where = f"{name} {region}" if region else name
        _tell("started", name, region)
        log = run_logger()
        log.info("%s: started", where)
        result = fn(*args, **kwargs)
        try:
            facts = counts(result)
        except Exception as exc:  # noqa: BLE001 - a log line must never fail the run it describes
            facts = {"counts_unavailable": type(exc).__name__}
        log.info("%s: done %s", where, " ".join(f"{k}={v}" for k, v in facts.items()))
        _tell("finished", name, region, result)
        return result

    return stage


class TerminalStatus:
    """A status line on a terminal (rich): which stage, which region (k of n). Gone when the run ends."""

    def __init__(self, console, region: str | None = None) -> None:
        self.console = console
        self.region = region
        self.regions: int | None = None  # known once the catalogue is read
        self.started_regions = 0  # regions run concurrently: the k-th region started, of n
        self.status = None

    def started(self, stage: str, region: str | None) -> None:
        self.started_regions += 1 if region else 0
        of = f" ({self.started_regions}/{self.regions})" if region and self.regions else ""
        text = f"disburse: {stage}" + (f" · {region}{of}" if region else "")
        if self.status is not None:
            self.status.update(text)

    def finished(self, stage: str, region: str | None, result: Any) -> None:
        catalogue = getattr(result, "catalogue", None)
        if catalogue is not None and self.regions is None:
            self.regions = 1 if self.region else len(catalogue.regions)

    @contextmanager
    def shown(self) -> Iterator["TerminalStatus"]:
        with self.console.status("disburse: starting Prefect", spinner="dots") as status:
            self.status = status
            with listening(self):
                yield self
        self.status = None


@contextmanager
def on_terminal(console, region: str | None = None) -> Iterator[None]:
    """A live status line on CONSOLE only when it is a terminal: in a script, stderr stays one line on failure."""
    if not console.is_terminal:
        yield
        return
    with TerminalStatus(console, region).shown():
        yield
