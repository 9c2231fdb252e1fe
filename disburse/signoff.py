"""``disburse approve``: finance signs off a region's year, and the signed files say so.

Approving the run in place records it in the state (``state.approve``) and stamps the approval (who,
when, the run) on the cover of ``payments.xlsx`` and on the summary of ``audit.html``; approving a
rerun's pending adjustments stamps ``adjustments.xlsx``. Nothing else in the files changes: every
amount, line and the rest of both pages stay byte for byte.

The stamped files are written the way a run publishes (``disburse.job.publish``): staged under
``OUT/Y/.staging-<id>/`` with the year's manifest (their new sha256, and the approval), flushed to
disk, registered in the state's ``publishing`` table in the same transaction as the approval, and
moved in after the commit; a kill in between is finished by the next run or approval. So the state,
the files and the manifest agree, and ``disburse verify`` passes. A file is stamped only if it is
still as its run wrote it (its sha256 is the manifest's): approve refuses to sign a changed file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from disburse import audit, excel, outputs, state
from disburse.money import fmt_fen
from disburse.state import Approval, StateError

BEIJING = dt.timezone(dt.timedelta(hours=8))  # China keeps one offset all year


def beijing(at: dt.datetime) -> str:
    """A UTC time as the state stores it (naive), in Beijing time: '2025-01-16 10:32:05'."""
    return at.replace(tzinfo=dt.timezone.utc).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def signed(fen: int) -> str:
    return ("+" if fen > 0 else "") + fmt_fen(fen)


def message(a: Approval, label: str, notes: list[str]) -> str:
    """What approve prints: what it approved, the count and the total, who and when."""
    when = f"审批人 {a.by}，{beijing(a.at)}（北京时间）"
    if a.kind == "run":
        text = (f"已审批 {a.year} 年度 {label} 的运行 {a.run_id}：{a.count} 行，应付合计 {fmt_fen(a.pay_fen)} 元；{when}")
    else:
        text = (f"已审批 {a.year} 年度 {label} 的 {a.count} 项调整（重算运行 {a.run_id}，已审批的运行 "
                f"{a.approved_run_id}）：补付 {a.pay_count} 项 {fmt_fen(a.pay_fen)} 元，追回 {a.recover_count} 项 "
                f"{fmt_fen(a.recover_fen)} 元，净额 {signed(a.pay_fen - a.recover_fen)} 元；{when}")
    return "\n".join([text, *notes])


def _unchanged(year_dir: Path, doc: dict, region: str) -> None:
    """Refuse to sign a region whose files changed since its run wrote them (sha256 against the manifest)."""
    listed = {year_dir / rel: d.get("sha256") for rel, d in doc.get("outputs", {}).items()}
    found = outputs.sha256_all([p for p in listed if p.is_file()], 2)
    for path, digest in sorted(listed.items()):
        if found.get(path) != digest:
            rel = path.relative_to(year_dir)
            raise StateError(f"{rel}：自运行写出后已缺失或被改动（sha256 与 manifest 不符），不能审批；"
                             f"请用 disburse verify {year_dir} 查看")


def stage_stamps(out_dir: Path, a: Approval, hold: str, notes: list[str]) -> outputs.Staged | None:
    """The files that say A was approved, staged to move in after the state commits (None: nothing to
    stamp). NOTES gets a line for each file that cannot say so (written by a version without the place)."""
    year_dir = out_dir / str(a.year)
    manifest = outputs.read_manifest(year_dir / "manifest.json")
    doc = manifest.get("regions", {}).get(a.region)
    when = beijing(a.at)
    at_utc = a.at.replace(tzinfo=dt.timezone.utc).isoformat(timespec="seconds")
    live = year_dir / a.region
    stamps: list[tuple[str, callable]] = []
    if a.kind == "run":
        if doc is None or doc.get("run_id") != a.run_id:
            raise StateError(f"{year_dir}：{a.region} 的文件{'来自运行 ' + doc['run_id'] if doc else '不在 manifest 中'}，"
                             f"而状态记录的是运行 {a.run_id}；请先 disburse verify {year_dir}")
        _unchanged(year_dir, doc, a.region)
        status = f"已审批（运行 {a.run_id}）"
        stamps = [
            ("payments.xlsx", lambda src, dst: excel.stamp_approval(src, dst, {"status": status, "by": a.by, "at": when})),
            ("audit.html", lambda src, dst: audit.stamp_approval(src, dst, [
                ("审批状态", f"已审批：运行 {a.run_id}，应付合计 {fmt_fen(a.pay_fen)} 元"),
                ("审批人", a.by), ("审批时间（北京时间）", when)])),
        ]
    else:
        adjusted = live / "adjustments.csv"
        rerun = pl.read_csv(adjusted, infer_schema=False, columns=["run_id"]).head(1) if adjusted.is_file() else None
        if rerun is not None and rerun.height and rerun["run_id"][0] == a.run_id:
            status = (f"已审批（{a.count} 项：补付 {fmt_fen(a.pay_fen)} 元，追回 {fmt_fen(a.recover_fen)} 元）")
            stamps = [("adjustments.xlsx",
                       lambda src, dst: excel.stamp_approval(src, dst, {"status": status, "by": a.by, "at": when}))]
        else:
            notes.append(f"{a.region}/adjustments.csv 不是重算运行 {a.run_id} 写的，adjustments.xlsx 未注明审批")
    staged = outputs.stage(out_dir, a.year, hold, [a.region])
    try:
        region_dir = staged.region_dir(a.region)
        region_dir.mkdir()
        for name, stamp in stamps:
            if not (live / name).is_file():
                notes.append(f"{a.region}/{name} 不存在，未注明审批")
                continue
            try:
                stamp(live / name, region_dir / name)
            except (ValueError, excel.StampError):
                (region_dir / name).unlink(missing_ok=True)
                notes.append(f"{a.region}/{name} 由没有审批栏的版本写出，未注明审批（审批已记录在状态文件中）")
                continue
            rel = f"{a.region}/{name}"
            if doc is not None and rel in doc.get("outputs", {}):
                doc["outputs"][rel]["sha256"] = outputs.sha256(region_dir / name)
        record = {"by": a.by, "at": at_utc, "at_beijing": when}
        if a.kind == "run" and doc is not None:
            doc["approval"] = {"run_id": a.run_id, **record}
        elif a.kind == "adjustments" and a.region in manifest.get("adjustments", {}):
            manifest["adjustments"][a.region].update(status="approved", approval={"run_id": a.run_id, **record})
        (region_dir / outputs.MERGE).write_bytes(b"")
        if manifest:
            outputs.write_manifest(staged.staging / "manifest.json", manifest)
        staged.seal()
    except BaseException:
        staged.discard()
        raise
    return staged


def approve(out_dir: Path, state_path: Path, *, year: int, region: str, by: str, known: list[str],
            hold: str) -> tuple[Approval, list[str]]:
    """Sign off YEAR REGION (the run in place, or its pending adjustments) and stamp the files that say so.
    KNOWN: the catalogue's regions (a region only the state knows is known too). Returns the approval and
    notes on files that could not be stamped."""
    from disburse import job

    with state.held(state_path, hold):
        con = state.connect(state_path)
        try:
            recorded = {r for (r,) in con.execute("select distinct region from runs").fetchall()}
            if region not in set(known) | recorded:
                raise StateError(f"--region {region}：未知区域（已知：{'、'.join(sorted(set(known) | recorded))}）")
            job.recover(con, out_dir)
            notes: list[str] = []
            staged: list[outputs.Staged] = []

            def stamp(a: Approval) -> None:
                s = stage_stamps(out_dir, a, hold, notes)
                if s is not None:
                    staged.append(s)
                    state.begin_publishing(con, state.Publishing(hold, s.year_dir, s.staging, s.names))

            try:
                a = state.approve(con, state_path, year=year, region=region, by=by, before_commit=stamp)
            except BaseException:
                for s in staged:
                    s.discard()
                raise
            for s in staged:
                job.move_in(con, s, hold)
        finally:
            con.close()
    return a, notes
