"""The job runtime: admission, one JobRun per paid job, and the background work that keeps jobs moving."""

from bot.runtime.outcome import AsLink, DeliveryTarget, JobOutcome, LinkReason, ListenLink, Pause, Phase
from bot.runtime.requests import chosen_model, custom_mode_model, validate_request
from bot.runtime.reservation import Reservation
from bot.runtime.runtime import RESTARTING_MESSAGE, JobRuntime, TargetFactory

__all__ = [
    "RESTARTING_MESSAGE",
    "AsLink",
    "DeliveryTarget",
    "JobOutcome",
    "JobRuntime",
    "LinkReason",
    "ListenLink",
    "Pause",
    "Phase",
    "Reservation",
    "TargetFactory",
    "chosen_model",
    "custom_mode_model",
    "validate_request",
]
