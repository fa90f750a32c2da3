"""Escalation gates: judge a cheap tier's answer and say when to ask the next tier.

``gates.py`` holds the interface (``Answer``, ``Verdict``, ``Gate``, ``GateSpec``,
``build_gates``) and the rule gates; ``verifier.py`` the learned gate; ``train.py`` its training
(``tiergate train escalation``); ``verifier_prompt.py`` the verifier-model gate's prompt. The
escalation stage calls these; ``gateway/eval/escalation_eval.py`` measures them. See
docs/escalation.md.
"""
