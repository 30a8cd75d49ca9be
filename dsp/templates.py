"""Exercise templates: which glute and lumbar roles a rep compares."""

from __future__ import annotations

from dataclasses import dataclass

from dsp.contract import GLUTES, LUMBARS, ContractError, Role, StreamInfo


@dataclass(frozen=True)
class ExerciseTemplate:
    name: str
    title: str
    glutes: tuple[Role, ...]
    lumbars: tuple[Role, ...]
    description: str

    def resolve(self, info: StreamInfo) -> tuple[tuple[Role, ...], tuple[Role, ...]]:
        """The template's roles that the stream actually maps; at least one of each kind."""
        glutes = tuple(r for r in self.glutes if r in info.roles)
        lumbars = tuple(r for r in self.lumbars if r in info.roles)
        if not glutes or not lumbars:
            want = ", ".join(r.value for r in (*self.glutes, *self.lumbars))
            have = ", ".join(r.value for r in info.roles) or "none"
            raise ContractError(
                f"exercise {self.name!r} compares {want}; the stream maps only {have}"
            )
        return glutes, lumbars


def _bilateral(name: str, title: str, desc: str) -> ExerciseTemplate:
    return ExerciseTemplate(name, title, GLUTES, LUMBARS, desc)


def _one_leg(name: str, title: str, side: str, desc: str) -> ExerciseTemplate:
    glute = Role.GLUTE_L if side == "left" else Role.GLUTE_R
    # The working leg's glute against both erectors: the spine is loaded on both sides.
    return ExerciseTemplate(f"{name}_{side}", f"{title} ({side} leg)", (glute,), LUMBARS, desc)


TEMPLATES: dict[str, ExerciseTemplate] = {}
for _t in (
    _bilateral("hinge", "Hip hinge", "Bilateral hip hinge: both glutes vs both lumbar ES."),
    _bilateral("deadlift", "Deadlift", "Bilateral: both glutes vs both lumbar ES."),
    _bilateral("squat", "Squat", "Bilateral: both glutes vs both lumbar ES."),
    _bilateral("hip_thrust", "Hip thrust / bridge", "Bilateral: both glutes vs both lumbar ES."),
):
    TEMPLATES[_t.name] = _t
for _side in ("left", "right"):
    for _t in (
        _one_leg(
            "prone_hip_extension",
            "Prone hip extension",
            _side,
            "Lying prone, lift one straight leg: that glute vs both lumbar ES.",
        ),
        _one_leg(
            "single_leg_rdl", "Single-leg RDL", _side, "Stance leg's glute vs both lumbar ES."
        ),
        _one_leg(
            "split_squat", "Bulgarian split squat", _side, "Front leg's glute vs both lumbar ES."
        ),
        _one_leg(
            "bird_dog",
            "Bird-dog",
            _side,
            "Extending leg's glute vs both lumbar ES (the contralateral ES works hardest).",
        ),
    ):
        TEMPLATES[_t.name] = _t


def get_template(name: str) -> ExerciseTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ContractError(
            f"unknown exercise {name!r} (known: {', '.join(sorted(TEMPLATES))})"
        ) from None
