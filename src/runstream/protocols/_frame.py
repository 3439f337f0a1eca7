"""`Frame`, the translator protocol, and the operator and SSE framing both formats share."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from reactivex import Observable, abc

from .._observable import LeanObservable
from ..events import AssistantReply, Event, PlannerThought

__all__ = [
    "Encoding",
    "Frame",
    "FrameId",
    "Translator",
    "frame_id",
    "operator",
    "parse_frame_id",
    "sse",
]


@attrs.frozen(slots=True)
class Frame:
    """One object of a UI protocol, made from one run event.

    Attributes:
        seq: the `seq` of the run event it came from.
        part: its index among the frames that event made (0, 1, ...).
        data: the protocol's JSON object, in its wire form (camelCase keys).
    """

    seq: int
    part: int
    data: dict[str, Any]

    @property
    def id(self) -> str:
        """Its SSE `id:`: `"{seq}"` for part 0, `"{seq}.{part}"` after."""
        return frame_id(self.seq, self.part)


FrameId = tuple[int, int]
"""A frame's position: `(seq, part)`."""


class Translator(Protocol):
    """Turns a root run's events, fed in `seq` order, into a protocol's objects."""

    def feed(self, event: Event) -> list[dict[str, Any]]:
        """The protocol objects `event` makes (none, one, or several)."""
        ...

    def encode(self, event: Event) -> list[bytes]:
        """What `feed` makes, as SSE messages (`sse`): what a server sends."""
        ...


class Encoding:
    """What both translators share: `feed` with a fast path for the commonest frame.

    Most of a run is text deltas of root messages already started. Such a
    chunk makes one frame, `{"type": <kind>, <id key>: message_id, "delta":
    text}`, and `encode` writes it straight to its wire form, at a fraction
    of a dict's JSON encoding. A translator names the two kinds (text,
    reasoning) and the id key, keeps `open` (message ids started) and `root`
    (the root run's id), and translates every other event in `translate`.
    """

    kinds: tuple[str, str]  # the delta frame's type for a reply, for a thought
    id_key: str  # the delta frame's key of the message id
    open: set[str]
    root: str

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        text, thought = cls.kinds
        cls._heads = (f'{{"type":"{text}","{cls.id_key}":', f'{{"type":"{thought}","{cls.id_key}":')

    def translate(self, event: Event) -> list[dict[str, Any]]:
        raise NotImplementedError

    def delta(self, event: Event) -> tuple[int, str, str] | None:
        """(0 for a reply, 1 for a thought; message id; text) of a plain delta, else None."""
        cls = event.__class__
        if cls is AssistantReply or cls is PlannerThought:
            chunk: AssistantReply | PlannerThought = event  # type: ignore[assignment]
            if (
                not chunk.done
                and chunk.text
                and chunk.message_id in self.open
                and chunk.run.run_id == self.root
            ):
                return (0 if cls is AssistantReply else 1), chunk.message_id, chunk.text
        return None

    def feed(self, event: Event) -> list[dict[str, Any]]:
        """The protocol objects `event` makes (none, one, or several)."""
        fast = self.delta(event)
        if fast is not None:
            which, mid, text = fast
            return [{"type": self.kinds[which], self.id_key: mid, "delta": text}]
        return self.translate(event)

    def encode(self, event: Event) -> list[bytes]:
        """What `feed` makes, as SSE messages."""
        seq = event.seq
        fast = self.delta(event)
        if fast is not None:
            which, mid, text = fast
            line = f'{self._heads[which]}{_string(mid)},"delta":{_string(text)}}}'
            return [f"id: {seq}\ndata: {line}\n\n".encode()]
        return [sse(seq, part, data) for part, data in enumerate(self.feed(event))]

    _heads: tuple[str, str]


def frame_id(seq: int, part: int) -> str:
    """`"{seq}"` for part 0, `"{seq}.{part}"` after."""
    return str(seq) if part == 0 else f"{seq}.{part}"


def parse_frame_id(text: str) -> FrameId:
    """`"12"` -> `(12, 0)`, `"12.3"` -> `(12, 3)`.

    Raises:
        ValueError: `text` is neither form.
    """
    seq, dot, part = text.strip().partition(".")
    try:
        position = (int(seq), int(part) if dot else 0)
    except ValueError:
        raise ValueError(f"expected a frame id like 12 or 12.3, got {text!r}") from None
    if position[0] < -1 or position[1] < 0 or (dot and not part.isdigit()):
        raise ValueError(f"expected a frame id like 12 or 12.3, got {text!r}")
    return position


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_string = json.encoder.encode_basestring  # UTF-8 kept, as in every other frame


def sse(seq: int, part: int, data: dict[str, Any]) -> bytes:
    """One SSE message: `id: {frame id}` and `data: {JSON}`."""
    if part:
        return f"id: {seq}.{part}\ndata: {_dumps(data)}\n\n".encode()
    return f"id: {seq}\ndata: {_dumps(data)}\n\n".encode()


def operator(
    make: Callable[[], Translator],
) -> Callable[[Observable[Event]], Observable[Frame]]:
    """An operator that feeds each subscription's events to a fresh translator."""

    def apply(source: Observable[Event]) -> Observable[Frame]:
        def subscribe(
            observer: abc.ObserverBase[Frame], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            translator = make()
            emit = observer.on_next

            def on_next(event: Event) -> None:
                seq = event.seq
                for part, data in enumerate(translator.feed(event)):
                    emit(Frame(seq, part, data))

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return LeanObservable(subscribe)

    return apply
