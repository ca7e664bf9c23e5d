"""The sandbox backend's cost: CPU seconds to synthesise and encode one take (15 and 30 s), and to draw a cover,
measured with time.process_time in this process (the bot runs it in a worker thread, off the event loop)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from bot.backends.sandbox import SandboxTask
from bot.backends.sandbox_cover import draw_cover
from bot.backends.sandbox_synth import render_mp3
from bot.models import GenerationMode, GenerationRequest


@dataclass(frozen=True, slots=True)
class TakeCost:
    seconds: int  # the take's length
    median: float  # CPU seconds per take
    worst: float


def take_costs(takes: int) -> list[TakeCost]:
    """`takes` different prompts per length, each take rendered once (nothing cached)."""
    costs = []
    for seconds in (15, 30):
        spent = []
        for number in range(takes):
            request = GenerationRequest(GenerationMode.DESCRIPTION, f"bench tune {number}", duration_seconds=seconds)
            plan = SandboxTask.for_request(request, 1000.0).take(number % 2)
            started = time.process_time()
            render_mp3(plan)
            spent.append(time.process_time() - started)
        costs.append(TakeCost(seconds, statistics.median(spent), max(spent)))
    return costs


def cover_cost(covers: int) -> float:
    """Median CPU seconds to draw one cover."""
    spent = []
    for number in range(covers):
        started = time.process_time()
        draw_cover(seed=number, take=number % 2)
        spent.append(time.process_time() - started)
    return statistics.median(spent)
