"""The verifier-model gate: another model (an alias) reads the question and the answer.

Use it when no cheap signal is good enough and one more small call is cheaper than escalating
blindly. The escalation stage sees a ``VerifierModelGate`` among the gates, sends
``verifier_messages(answer)`` to ``gate.alias`` (max_tokens 1, temperature 0, logprobs if the
target has them) and turns the reply into a verdict with ``gate.verdict(text, token_logprob)``.
``judge`` alone cannot make that call (gates do no I/O): it passes, saying a call is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.escalation.gates import Answer, Verdict

MAX_ANSWER_CHARS = 6000
INSTRUCTION = (
    "You check another assistant's answer. Read the question and the answer, check every step, "
    "and reply with exactly one word: yes if the final answer is correct, no otherwise."
)


def verifier_messages(answer: Answer) -> list[dict[str, str]]:
    """The chat messages to send to the verifier alias for this answer."""
    text = answer.text
    if len(text) > MAX_ANSWER_CHARS:
        text = text[: MAX_ANSWER_CHARS // 2] + "\n...\n" + text[-MAX_ANSWER_CHARS // 2 :]
    user = f"Question:\n{answer.prompt}\n\nAnswer:\n{text}\n\nIs the final answer correct?"
    return [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": user}]


def parse_yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when the reply is neither."""
    word = text.strip().strip(".!*\"'`").split(maxsplit=1)
    if not word:
        return None
    head = word[0].strip(".,:;!*\"'`").lower()
    if head in ("yes", "correct", "true"):
        return True
    if head in ("no", "incorrect", "wrong", "false"):
        return False
    return None


@dataclass(frozen=True, slots=True)
class VerifierModelGate:
    """A yes/no verifier model; the stage makes the call (see the module docstring)."""

    alias: str
    min_yes: float
    name: str = "verifier"
    needs_logprobs: bool = False
    samples: int = 0

    def messages(self, answer: Answer) -> list[dict[str, str]]:
        return verifier_messages(answer)

    def judge(self, answer: Answer) -> Verdict:
        from gateway.escalation.gates import Verdict

        return Verdict(self.name, True, None, "needs-verifier-call")

    def verdict(self, reply: str, token_logprob: float | None = None) -> Verdict:
        """Judge from the verifier's reply (and the logprob of its one reply token, when known)."""
        from gateway.escalation.gates import Verdict

        said = parse_yes_no(reply)
        if said is None:  # neither yes nor no is no evidence against the answer
            return Verdict(self.name, True, None, "verifier-unclear")
        if token_logprob is not None:
            p_yes = math.exp(token_logprob) if said else 1.0 - math.exp(token_logprob)
            passed = p_yes >= self.min_yes
            return Verdict(self.name, passed, p_yes, f"p-yes {p_yes:.2f}")
        return Verdict(self.name, said, 1.0 if said else 0.0, "verifier-yes" if said else "no")
