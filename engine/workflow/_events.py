"""The events a run received for its ``wait_for`` steps (the ``send_event`` signal).

An event sent to the run itself is kept until a ``wait_for`` step takes it, so a sender that is
faster than the run (a webhook firing before the run reaches its step) loses nothing; the
oldest are dropped beyond :data:`EVENTS_KEPT`. An event broadcast to every run waiting for its
name is for the steps waiting now: one that no waiting step takes is dropped. A repeat of an
event (same ``event_id``: a sender's retry) is ignored.

The names the run waits for are mirrored in the ``EngineEvents`` search attribute, which is how
a broadcast finds the runs to send to.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any, Final

from temporalio import workflow

from engine.definition import EVENT_NAME
from engine.protocol import Event
from engine.workflow._search import ENGINE_EVENTS

__all__ = ["EVENTS_KEPT", "NOTHING", "Events"]

EVENTS_KEPT: Final = 64
"""Events kept for steps that do not wait yet (the oldest are dropped beyond this)."""
_IDS_KEPT: Final = 256
NOTHING: Final = object()
"""What :meth:`Events.take` returns when no event matches."""


class Events:
    """Events received and not taken yet, and what the run's steps wait for.

    Args:
        kept: What the previous run carried over (events not taken, ids seen).

    Attributes:
        arrivals: Grows with every event received (waiting steps look again then).
    """

    def __init__(self, kept: dict[str, Any]) -> None:
        self.kept: collections.deque[Event] = collections.deque(
            kept.get("kept", []), maxlen=EVENTS_KEPT
        )
        self.seen: collections.deque[str] = collections.deque(
            kept.get("seen", []), maxlen=_IDS_KEPT
        )
        self.arrivals = 0
        self.waiting: dict[str, str] = {}
        """Step id -> the event name it waits for."""
        self._searched: list[str] = []

    def carried(self) -> dict[str, Any]:
        """What continue-as-new carries ({} when nothing: old runs carried nothing)."""
        if not self.kept and not self.seen:
            return {}
        return {"kept": list(self.kept), "seen": list(self.seen)}

    def receive(self, event: Any) -> None:
        """Take an event in (the signal handler); anything malformed is logged and dropped."""
        if not isinstance(event, dict) or not isinstance(event.get("name"), str):
            workflow.logger.warning("send_event: not an event, dropped: %r", event)
            return
        if not EVENT_NAME.fullmatch(event["name"]):
            workflow.logger.warning("send_event: bad event name %r, dropped", event["name"])
            return
        event_id = str(event.get("event_id") or "")
        if event_id and event_id in self.seen:
            return  # a sender's retry
        if event_id:
            self.seen.append(event_id)
        self.kept.append(
            {
                "name": event["name"],
                "payload": event.get("payload"),
                "event_id": event_id,
                "broadcast": bool(event.get("broadcast")),
            }
        )
        self.arrivals += 1

    def take(self, name: str, matches: Callable[[Any], bool]) -> Any:
        """The payload of the oldest event of ``name`` that ``matches``, removed; else
        :data:`NOTHING`. Broadcast events of that name that did not match are dropped."""
        found: Any = NOTHING
        remaining: list[Event] = []
        for event in self.kept:
            if found is NOTHING and event["name"] == name and matches(event["payload"]):
                found = event["payload"]
            elif not (event["broadcast"] and event["name"] == name):
                remaining.append(event)
        self.kept = collections.deque(remaining, maxlen=EVENTS_KEPT)
        return found

    def wait(self, step_id: str, name: str | None) -> None:
        """Step ``step_id`` starts (``name``) or stops (None) waiting: the search attribute
        follows."""
        if name is None:
            self.waiting.pop(step_id, None)
        else:
            self.waiting[step_id] = name
        names = sorted(set(self.waiting.values()))
        if names != self._searched:
            self._searched = names
            value = ENGINE_EVENTS.value_set(names) if names else ENGINE_EVENTS.value_unset()
            workflow.upsert_search_attributes([value])
