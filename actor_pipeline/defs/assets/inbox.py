import dagster as dg

# Not materialized by anything: the inbox sensor observes it once per bad file, so the problems
# are listed on an asset page (newest first) rather than only in a sensor tick's log, which
# scrolls away within minutes.
inbox_rejects = dg.AssetSpec(
    "inbox_rejects",
    description="Files in the inbox that could not be taken in: each observation names one file and what is "
    "wrong with it. Fixing (or replacing) the file retries it; removing it is fine too.",
    group_name="inbox",
    kinds={"file"},
)


def rejected_file(problem: str) -> dg.AssetObservation:
    """An observation of ``inbox_rejects`` from a problem line of the inbox, ``"<file>: <what is wrong>"``."""
    file, _, what = problem.partition(": ")
    return dg.AssetObservation(
        asset_key=inbox_rejects.key,
        metadata={"file": dg.MetadataValue.path(file), "problem": what},
    )
