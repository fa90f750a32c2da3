"""The edit between a cached and an asked question (cache.edits): a repeat with trivial changes,
a near miss that changes one to three content words, or a rewording for the verifier."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cache.edits import edit, words
from cache.synonyms import share_sense
from gateway.eval.synonyms_build import build


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        (
            "Can you recommend a good budget vacuum cleaner?",
            "can u recommend a good budget vacuum cleaner",
        ),
        ("What are the symptoms of strep throat?", "What are the sypmtoms of strep throat?"),
        ("Explain inflation in simple terms.", "Explain inflation in simple terms pls."),
        ("How do I stop a headache without pills?", "how do i stop a headache w/o pills"),
        ("Can I bring food through airport security?", "Can I bring food thru airport security?"),
        ("How do I whiten my teeth at home?", "How can I whiten my teeth at home?"),
        ("How do I get my cat to use the litter box?", "How do I get my cat to use the litterbox?"),
        ("What's your favourite colour?", "What is your favorite color?"),
        ("Why won't my laptop turn on?", "why wont my laptop turn on"),
        (
            "Summarize the benefits of writing unit tests.",
            "Hey, summarize the benefits of writing unit tests. Thanks!",
        ),
    ],
)
def test_a_repeat_with_trivial_changes(cached: str, asked: str) -> None:
    assert edit(cached, asked).kind == "trivial"


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        (
            "What foods should I eat to lower my cholesterol?",
            "What foods should I avoid to lower my cholesterol?",
        ),
        (
            "What items are allowed in carry-on luggage?",
            "What items are forbidden in carry-on luggage?",
        ),
        (
            "Write a Stripe webhook handler for when a payment succeeds.",
            "Write a Stripe webhook handler for when a payment fails.",
        ),
        (
            "Write a cron expression that runs every 5 minutes.",
            "Write a cron expression that runs every 5 hours.",
        ),
        (
            "How do I tell pytest to run only the tests marked slow?",
            "How do I tell pytest to run all tests except the ones marked slow?",
        ),
        (
            "What is the boiling point of ethanol?",
            "What is the boiling point of methanol?",
        ),  # no typo
        ("What's 15% of 2,400?", "What's 1.5% of 2,400?"),
        ("How do I say thanks in Japanese?", "How do I say please in Japanese?"),  # not at the ends
        ("Eggs to double a recipe that uses 3?", "Eggs to triple a recipe that uses 3?"),
    ],
)
def test_a_changed_content_word_is_a_near_miss(cached: str, asked: str) -> None:
    assert edit(cached, asked).kind == "local"


def test_synonyms_and_function_words_go_to_the_verifier() -> None:
    assert edit("How do I contact customer support?", "How can I reach customer support?").kind == (
        "synonym"
    )
    assert edit(
        "How do I count lines in a file in Linux?", "How do I count lines in a file on Linux?"
    ).kind == ("function")
    # Words only moved are no repeat: the order guard and the verifier judge them.
    assert edit("Flights from Paris to Rome", "Flights from Rome to Paris").kind == "function"
    reworded = edit(
        "How do I stop my glasses from fogging?", "My glasses keep fogging up, any fix?"
    )
    assert reworded.kind == "broad"


def test_words_are_normalised_once() -> None:
    assert words("Hey, what's the kid's bedtime? pls") == ("what", "is", "the", "kid", "bedtime")
    assert words("How can I sign up?") == ("how", "to", "sign", "up")


def test_share_sense_reads_wordnet_and_never_joins_opposites() -> None:
    assert share_sense("contact", "reach") and share_sense("tasty", "delicious")
    assert not share_sense("allowed", "forbidden") and not share_sense("succeed", "fail")
    # WordNet joins "minute" and "hour" in a rare sense; the guards' units keep them apart.
    assert edit("Run it every 5 minutes.", "Run it every 5 hours.").kind == "local"


def test_the_synonym_artifact_is_built_from_wordnet_index_files(tmp_path: Path) -> None:
    header = "  1 This software and database is being provided\n"
    index = {
        "noun": "kid n 1 0 1 0 00000001\nchild n 2 0 2 0 00000001 00000002\n"
        "lonely n 1 0 1 0 00000009\n",
        "verb": "contact v 1 0 1 0 00000003\nreach v 2 0 2 0 00000004 00000003\n",
        "adj": "tasty a 1 0 1 0 00000005\ndelicious a 1 0 1 0 00000006\n",
        "adv": "",
    }
    data = {
        "adj": "00000006 00 s 01 delicious 0 001 & 00000005 a 0000 | gloss\n"
        "00000005 00 a 01 tasty 0 000 | gloss\n",
        "verb": "00000003 00 v 02 contact 0 reach 0 000 | gloss\n",
    }
    for pos, text in index.items():
        (tmp_path / f"index.{pos}").write_text(header + text)
    for pos, text in data.items():
        (tmp_path / f"data.{pos}").write_text(header + text)
    out = tmp_path / "synonyms.json.gz"
    counts = build(tmp_path, out)
    lemmas = json.loads(gzip.decompress(out.read_bytes()))["lemmas"]
    assert set(lemmas) == {"kid", "child", "contact", "reach", "tasty", "delicious"}  # no "lonely"
    assert lemmas["kid"] == lemmas["child"][:1] and lemmas["tasty"] == lemmas["delicious"]
    assert counts["lemmas"] == 6
    again = tmp_path / "again.json.gz"
    build(tmp_path, again)
    assert again.read_bytes() == out.read_bytes()  # the same files give the same bytes


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        # A red-team pass on the edit check: what normalising must never erase.
        ("Is sodium chloride safe to drink?", "Is sodium chlorite safe to drink?"),
        ("Are sulfates in wine bad for you?", "Are sulfites in wine bad for you?"),
        ("My visa expired, can I stay in the US?", "My visa expires, can I stay in the US?"),
        ("Who owns Twitter?", "Who owned Twitter?"),
        ("How much does a painter cost?", "How much does a painting cost?"),
        ("Symptoms of a typical pneumonia?", "Symptoms of atypical pneumonia?"),
        ("Can O- blood donate to A+?", "Can O+ blood donate to A-?"),
        ("Should I learn C++ or Java first?", "Should I learn C or Java first?"),
        ("How do you store my data?", "How do I store my data?"),
        ("Is it rude not to say thank you?", "Is it rude not to say please?"),
        ("What are Jewish mourning customs?", "What are Jewish morning customs?"),
        ("How much ibuprofen should I take?", "How much ibuprofen can I take?"),
        ("Can I take ibuprofen and acetaminophen?", "Can I take ibuprofen or acetaminophen?"),
        ("Is Pluto a planet?", "Was Pluto a planet?"),
        ("What are the side effects of the pill?", "What are the side effects of a pill?"),
    ],
)  # fmt: skip
def test_what_normalising_must_never_erase(cached: str, asked: str) -> None:
    assert edit(cached, asked).kind not in ("trivial", "function", "synonym")


def test_a_hand_written_synonym_pair_goes_to_the_verifier(tmp_path: Path) -> None:
    header = "  1 This software and database is being provided\n"
    for pos in ("noun", "verb", "adj", "adv"):
        (tmp_path / f"index.{pos}").write_text(header)
    for pos in ("adj", "verb"):
        (tmp_path / f"data.{pos}").write_text(header)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("fee charge\nCharge fee\nbad line here\n")
    out = tmp_path / "synonyms.json.gz"
    assert build(tmp_path, out, pairs)["pairs"] == 1
    assert json.loads(gzip.decompress(out.read_bytes()))["pairs"] == [["charge", "fee"]]
    assert edit(
        "What is the fee for a late payment?", "What is the charge for a late payment?"
    ).kind == ("synonym")  # the shipped artifact holds the hand-written list too


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        # Eighth session: how people shorten and stretch a question they repeat.
        ("How many ounces are in a cup?", "How many oz are in a cup?"),
        ("What is the difference between RAM and storage?",
         "What's the diff between RAM and storage?"),
        ("How do I block someone on Instagram?", "How do I block someone on Insta?"),
        ("How do I get rid of acne scars?", "Um, how do I get rid of acne scars?"),
        ("Where can I find my order number?", "where can i find my order #"),
        ("Why is my internet so slow?", "why is my internet sooo slow"),
        ("How do I fix a leaky faucet?", "How do I fix a leaky faucet? Any help appreciated!"),
        ("What are the opening hours of your store?", "what r the opening hours of ur store"),
        ("Why won't my printer connect to Wi-Fi?", "why wont my printer connect to wifi"),
    ],
)  # fmt: skip
def test_shorthand_stretching_and_fillers_are_trivial(cached: str, asked: str) -> None:
    assert edit(cached, asked).kind == "trivial"


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        ("How many oz are in a cup?", "How many ml are in a cup?"),
        ("How many lbs is 10 kg?", "How many oz is 10 kg?"),
        ("Is it OK to run 5 hrs a week?", "Is it OK to run 5 mins a week?"),
        ("How do I block someone on Insta?", "How do I block someone on TikTok?"),
        ("What is the diff between RAM and ROM?", "What is the diff between RAM and storage?"),
    ],
)  # fmt: skip
def test_shorthand_keeps_a_changed_unit_or_name(cached: str, asked: str) -> None:
    assert edit(cached, asked).kind != "trivial"


def test_a_per_a_swap_goes_to_the_verifier() -> None:
    drink = ("How much water should I drink a day?", "how much water should i drink per day")
    assert edit(*drink).kind == "function"


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        ("How do I calculate a tip of 20 percent?", "How do I calculate a tip of 20%?"),
        ("How do I change the oil?", "Just wondering, how do I change the oil?"),
        ("What if I lose my passport abroad?", "What if I lose my passport abroad? Please advise."),
        ("How do I mute someone on Instagram?", "How do I mute someone on IG?"),
        ("How do I turn off autocorrect?", "How do I turn off auto-correct?"),
        ("How do I convert Celsius to Fahrenheit?", "how do u convert celsius to fahrenheit"),
        ("Why does my dog eat grass?", "lol why does my dog eat grass"),
        ("How do I remove a stain?", "How do I remove a stain??? Help!!!"),
        ("How do I roll back a release in Kubernetes?", "How do I roll back a release in k8s?"),
        ("What's a good gift for a coworker?", "What's a good gift for a co-worker?"),
        ("How do I fix a running toilet?", "how do i fix a runnning toilet?!"),
        ("How can I get a refund for a cancelled flight?",
         "How can I get a refund for a canceled flight?"),
        ("What temperature should I bake salmon at?", "what temp should i bake salmon at"),
        ("How do I track a package with USPS?", "how do i track a package w usps?"),
        ("How much should I tip a hairdresser?", "how much shld i tip a hairdresser?"),
        ("Is it normal for a baby to sneeze a lot?", "is it normal for a baby to sneeze alot"),
        ("How do I write a for loop in JavaScript?", "how do i write a for loop in JS"),
        ("What's the weather in Lisbon in October?", "whats the weather in lisbon in oct"),
    ],
)  # fmt: skip
def test_more_ways_of_repeating_a_question_are_trivial(cached: str, asked: str) -> None:
    assert edit(cached, asked).kind == "trivial"


def test_a_changed_percentage_is_still_a_near_miss() -> None:
    assert edit("What is 20% of 80?", "What is 25 percent of 80?").kind == "local"


@pytest.mark.parametrize(
    ("cached", "asked"),
    [("Should I re-sign my contract?", "Should I resign my contract?"),
     ("How do I re-cover a chair?", "How do I recover a chair?"),
     ("Is well water safe to drink?", "Is water safe to drink?"),
     ("Well water: is it safe to drink?", "Water: is it safe to drink?"),
     ("How do I join a co-op?", "How do I join a coop?"),
     # a third red-team pass: grades and sizes, song titles, algebra, dotted abbreviations
     ("Is a BBB credit rating a safe investment?", "Is a B credit rating a safe investment?"),
     ("Do you carry XXXL shirts?", "Do you carry XL shirts?"),
     ("Who sings Someone Like You?", "Who sings Somebody Like You?"),
     ("What is the integral of x-ln(x)?", "What is the integral of xln(x)?"),
     ("What does B.C. stand for?", "What does bc stand for?"),
     ("Has the form been filled?", "Has the form been filed?"),
     ("Why is my stomach bloating?", "Why is my stomach boating?")],
)  # fmt: skip
def test_prefixes_and_leading_words_that_change_the_meaning_are_kept(
    cached: str, asked: str
) -> None:
    assert edit(cached, asked).kind != "trivial"


def test_a_stretched_word_is_the_common_word_it_stretches() -> None:
    # A held-out near-repeat (traps_twelfth): "summmer" is "summer", not "Sumer".
    assert edit(
        "How do I cut my bill in the summer?", "how do i cut my bill in the summmer"
    ).kind == ("trivial")
    assert edit("Is it so bad?", "is it sooo bad").kind == "trivial"
    # of two common words, the doubled letter: "desssert" is no "desert" (a red-team pass)
    assert edit("What's a good dessert for a party?", "whats a good desssert for a party").kind == (
        "trivial"
    )
    assert edit("What's a good desert to visit?", "whats a good desssert to visit").kind != (
        "trivial"
    )


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        # Twelfth session: a request wrapped around a question is not the bare question (a
        # rule that treated them alike was red-teamed and withdrawn:
        # data/cache_eval/redteam/twelfth_wrapper.jsonl).
        ("If the stock market crashed today?", "I want to know if the stock market crashed today"),
        ("How do I draw a cat?", "Show me how to draw a cat"),
        ("Do you know how to swim?", "How to swim?"),
        ("Will you tell me when the download finishes?",
         "Can you tell me when the download finishes?"),
    ],
)  # fmt: skip
def test_a_request_wrapped_around_a_question_is_no_trivial_edit(cached: str, asked: str) -> None:
    assert edit(cached, asked).kind != "trivial"


@pytest.mark.parametrize(
    ("cached", "asked"),
    [("How many cups are in a litre?", "How many cups are in a liter?"),
     ("Why do my ears pop on aeroplanes?", "Why do my ears pop on airplanes?"),
     ("Is anaemia common in pregnancy?", "Is anemia common in pregnancy?"),
     ("How do I get my money back for a cancelled flight?",
      "How do I get my money back for a canceled flight?"),
     ("How long does a driving licence last?", "How long does a driving license last?"),
     ("Is it safe to eat raw cookie dough?",
      "Is it safe to eat raw cookie dough? asking for a friend"),
     ("How do I clean my laptop keyboard?", "how do i clean my laptop keyboard?! help")],
)  # fmt: skip
def test_british_spellings_and_trailing_asides_are_trivial(cached: str, asked: str) -> None:
    # The written sets' near-repeats the edit check refused (fifteenth session).
    assert edit(cached, asked).kind == "trivial"
    assert edit(asked, cached).kind == "trivial"


@pytest.mark.parametrize(
    ("cached", "asked"),
    [("How do I fix a filling that fell out?", "How do I fix a filing that fell out?"),
     ("What is the timbre of a violin?", "What is the timber of a violin?"),
     ("Where can I get help", "Where can I get"),
     ("Can I plant seeds in untilled soil?", "Can I plant seeds in untiled soil?")],
)  # fmt: skip
def test_words_that_only_look_like_another_spelling_are_not_trivial(
    cached: str, asked: str
) -> None:
    # "filling" / "filing" share no sense; "timber" is WordNet's other spelling of "timbre"
    # but also wood; "help" is an aside only after the question's end.
    assert edit(cached, asked).kind != "trivial"
