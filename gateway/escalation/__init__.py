"""Escalation gates: judge a cheaper tier's answer; a failed gate re-asks the next tier.

``gates.py`` holds the interface (``Answer``, ``Verdict``, ``Gate``, ``GateSpec``,
``build_gates``) and the rule gates; ``verifier.py`` the learned gate; ``train.py`` its training
(``tiergate train escalation``); ``verifier_prompt.py`` the verifier-model gate's prompt. The
escalation stage (``gateway/stages/escalation.py``) calls these;
``gateway/eval/escalation_eval.py`` measures them. See docs/escalation.md.
"""
