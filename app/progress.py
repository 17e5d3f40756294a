"""Follow a flow run in the terminal: one progress bar, redrawn only when something changes."""

from __future__ import annotations

from tqdm import tqdm


def shown_percent(status) -> float:
    """The bar's value: what the run reported, and 100 once it completed (a flow whose last
    report came before its final write must not leave the bar short of the end)."""
    return 100.0 if status.state == "COMPLETED" else status.progress or 0.0


def follow(run_id: str, label: str):
    """Wait for a flow run with a progress bar; returns its final status (raises if it failed)."""
    from flows.submit import wait

    last = None
    with tqdm(total=100, desc=label, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:
        def show(status) -> None:
            nonlocal last
            now = (status.state, status.progress, status.description)
            if now == last:
                return
            last = now
            bar.n = shown_percent(status)
            bar.set_postfix_str(status.description[:70] or status.state.lower(), refresh=False)
            bar.refresh()

        return wait(run_id, on_update=show)
