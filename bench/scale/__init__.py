"""Scenarios of bench/bench_scale.py: one module per area, each with `async def run(args) -> None`."""
