"""Transcripts: segments and their words with times, as stored per video.

Times inside an ASR backend's result are file times (0 = start of the downloaded file); the stored
transcript (`data/transcripts/<youtube_id>.json`) uses absolute source seconds, like feature
rows, and says so in `time_base`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TIME_BASE = "absolute source seconds"


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    prob: float = 1.0

    def shifted(self, offset: float) -> Word:
        return Word(round(self.start + offset, 3), round(self.end + offset, 3), self.word,
                    round(self.prob, 4))


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()

    def shifted(self, offset: float) -> Segment:
        return Segment(round(self.start + offset, 3), round(self.end + offset, 3), self.text,
                       tuple(w.shifted(offset) for w in self.words))


@dataclass(frozen=True)
class Transcript:
    language: str
    segments: tuple[Segment, ...] = field(default_factory=tuple)

    def shifted(self, offset: float) -> Transcript:
        return Transcript(self.language, tuple(s.shifted(offset) for s in self.segments))

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments).strip()

    def to_json(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "segments": [
                {"start": s.start, "end": s.end, "text": s.text,
                 "words": [{"start": w.start, "end": w.end, "word": w.word, "prob": w.prob}
                           for w in s.words]}
                for s in self.segments
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transcript:
        return cls(
            language=str(data.get("language") or ""),
            segments=tuple(
                Segment(float(s["start"]), float(s["end"]), str(s["text"]), tuple(
                    Word(float(w["start"]), float(w["end"]), str(w["word"]),
                         float(w.get("prob", 1.0)))
                    for w in s.get("words", ())))
                for s in data.get("segments", ())),
        )
