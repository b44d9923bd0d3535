"""Cron-like schedules per organization, on native Temporal Schedules in its namespace."""

from __future__ import annotations

from engine.scheduler._scheduler import (
    OVERLAP_POLICIES,
    UPDATABLE,
    ScheduleAlreadyExistsError,
    ScheduledRun,
    ScheduleNotFoundError,
    Scheduler,
    ScheduleRequest,
    ScheduleView,
)
from engine.scheduler._spec import Calendar, InvalidScheduleError, Spec, validate_cron

__all__ = [
    "OVERLAP_POLICIES",
    "UPDATABLE",
    "Calendar",
    "InvalidScheduleError",
    "ScheduleAlreadyExistsError",
    "ScheduleNotFoundError",
    "ScheduleRequest",
    "ScheduleView",
    "ScheduledRun",
    "Scheduler",
    "Spec",
    "validate_cron",
]
