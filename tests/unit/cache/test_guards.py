"""Near-miss guards: each one vetoes its kind of trap and lets paraphrases through."""

from __future__ import annotations

import pytest

from cache.guards import (
    _exchanged,
    _roles,
    dates,
    entities,
    features,
    first_difference,
    negation,
    numbers,
    order,
    polarity,
    question,
    scope,
    stance,
)

TRAPS = [
    # (guard that must fire, a, b)
    ("negation", "Cancel my subscription", "Don't cancel my subscription"),
    (
        "negation",
        "Can I return an item that was opened?",
        "Can I return an item that was never opened?",
    ),
    ("negation", "Get a loan with a credit history", "Get a loan without a credit history"),
    ("polarity", "How do I enable 2FA?", "How do I disable 2FA?"),
    ("polarity", "What are the pros of remote work?", "What are the cons of remote work?"),
    ("polarity", "How do I install Docker?", "How do I uninstall Docker?"),
    ("polarity", "How do I log in to Gmail?", "How do I log out of Gmail?"),
    ("polarity", "Which cities have the highest rents?", "Which cities have the lowest rents?"),
    ("polarity", "Is the toll included in the fare?", "Is the toll excluded from the fare?"),
    ("polarity", "Make the text bigger", "Make the text smaller"),
    ("numbers", "Is 200 mg of ibuprofen safe?", "Is 800 mg of ibuprofen safe?"),
    ("numbers", "New features in Python 3.12", "New features in Python 3.13"),
    ("numbers", "Book two tickets", "Book five tickets"),
    ("numbers", "Is 120/80 blood pressure normal?", "Is 140/90 blood pressure normal?"),
    ("numbers", "What is the 3rd amendment?", "What is the fifth amendment?"),
    ("numbers", "Does it support 8k context?", "Does it support 32k context?"),
    ("dates", "Weather forecast for tomorrow", "Weather forecast for today"),
    ("dates", "Sales in March", "Sales in April"),
    ("dates", "Agenda for next week", "Agenda for last week"),
    ("dates", "Is the office open on Saturday?", "Is the office open on Sunday?"),
    ("entities", "VAT rules in the EU", "VAT rules in the US"),
    ("entities", "How do I reverse a list in Python?", "How do I reverse a list in Java?"),
    ("entities", "Who founded Microsoft?", "Who founded Apple?"),
    ("entities", "Return policy at Walmart", "Return policy at Target"),
    ("entities", "Documents to rent a flat in Germany", "Documents to rent a flat"),
    ("order", "Flights from Paris to Rome", "Flights from Rome to Paris"),
    ("order", "convert pdf to word", "convert word to pdf"),
    ("order", "Is a dog smarter than a cat?", "Is a cat smarter than a dog?"),
    ("order", "Trains from Boston to New York", "Trains from New York to Boston"),
    ("scope", "Vaccines for children", "Vaccines for adults"),
    ("scope", "What is the best diet?", "What is the best diet for diabetics?"),
    ("scope", "Dress code for the office", "Dress code for the office party"),
    ("scope", "How can teachers use ChatGPT?", "How can students use ChatGPT?"),
    ("question", "When did the Berlin Wall fall?", "Why did the Berlin Wall fall?"),
    ("question", "Who discovered penicillin?", "How was penicillin discovered?"),
    ("question", "How old is the universe?", "How big is the universe?"),
    # added in the fifth session, after a red-team pass found these classes served
    ("polarity", "How do I move photos to my laptop?", "How do I move photos from my laptop?"),
    ("polarity", "Can I bring cheese into Canada?", "Can I bring cheese out of Canada?"),
    ("polarity", "Do any plans include roaming?", "Do all plans include roaming?"),
    ("polarity", "Is a helmet mandatory for cyclists?", "Is a helmet optional for cyclists?"),
    ("polarity", "What can a landlord deduct?", "What can a tenant deduct?"),
    ("polarity", "Is my dog overweight?", "Is my dog underweight?"),
    ("polarity", "Symptoms of hyperthyroidism", "Symptoms of hypothyroidism"),
    ("polarity", "Too much salt in soup, what to do?", "Too little salt in soup, what to do?"),
    ("order", "Can I fire my manager?", "Can my manager fire me?"),
    ("order", "How many cups are in a gallon?", "How many gallons are in a cup?"),
    ("order", "How many boxes fit in a crate?", "How many crates fit in a box?"),
    ("order", "Do I need a visa to travel to Spain?", "Do I need a visa to travel from Spain?"),
    (
        "polarity",
        "Should I leave the heater on at night?",
        "Should I leave the heater off at night?",
    ),
    ("polarity", "What if I forgot my PIN?", "What if I remember my PIN?"),
    # after the second red-team pass
    ("numbers", "Is -5 degrees too cold for a dog?", "Is 5 degrees too cold for a dog?"),
    ("numbers", "Should I water it once a week?", "Should I water it twice a week?"),
    (
        "polarity",
        "Is the gym membership billed monthly?",
        "Is the gym membership billed yearly?",
    ),
    ("polarity", "Does the 7 am bus stop here?", "Does the 7 pm bus stop here?"),
    ("polarity", "Is the match off if it rains?", "Is the match off unless it rains?"),
    ("polarity", "Is a flu shot recommended for nurses?", "Is a flu shot required for nurses?"),
    ("polarity", "Does my policy cover flood damage?", "Does my policy exclude flood damage?"),
    ("polarity", "Is it an inpatient procedure?", "Is it an outpatient procedure?"),
    ("polarity", "Do both owners have to sign?", "Does either owner have to sign?"),
    ("entities", "Is a 500 Mb download large?", "Is a 500 MB download large?"),
]

PARAPHRASES = [
    ("How do I reset my password?", "How can I reset my password?"),
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("Why can't I sleep at night?", "Why am I unable to sleep at night?"),
    ("Why doesn't my phone charge?", "Why won't my phone charge?"),
    ("What is 15% of 80?", "How much is 15 percent of 80?"),
    ("How many ounces are in a cup?", "How many ounces are in 1 cup?"),
    ("twenty five dollars", "25 dollars"),
    ("When did World War II end?", "When did the Second World War end?"),
    ("Who is the CEO of Microsoft?", "Who's the CEO of Microsoft?"),
    ("How do I connect my printer to Wi-Fi?", "How can I connect my printer to WiFi?"),
    ("How do I get a work visa for Canada?", "How can I get a Canadian work visa?"),
    ("How do I undo the last commit in git?", "How can I undo my last git commit?"),
    ("Is it safe to drink tap water in Mexico?", "Is tap water safe to drink in Mexico?"),
    ("What can I substitute for eggs in baking?", "What is a good egg substitute for baking?"),
    ("What vaccines do children need?", "Which vaccines do kids need?"),
    ("What is the population of Canada?", "How many people live in Canada?"),
]


@pytest.mark.parametrize(("guard", "a", "b"), TRAPS)
def test_each_trap_is_vetoed_by_its_guard(guard: str, a: str, b: str) -> None:
    assert first_difference(a, b) == guard
    assert first_difference(b, a) == guard  # guards are symmetric


@pytest.mark.parametrize(("a", "b"), PARAPHRASES)
def test_paraphrases_pass_every_guard(a: str, b: str) -> None:
    assert first_difference(a, b) is None


def test_identical_texts_always_pass() -> None:
    for _, a, b in TRAPS:
        assert first_difference(a, a) is None and first_difference(b, b) is None


def test_guards_are_pure_functions_of_features() -> None:
    fa, fb = features("Is 2 better than 3?"), features("Is 3 better than 2?")
    assert numbers(fa, fb) is False  # the same numbers ...
    assert order(fa, fb) is True  # ... in swapped roles
    assert not negation(fa, fb) and not polarity(fa, fb) and not dates(fa, fb)
    assert not entities(fa, fb) and not scope(fa, fb) and not question(fa, fb)


def test_months_that_are_also_words_only_count_when_capitalised() -> None:
    assert features("You may march on").dates == frozenset()
    assert features("Sales in May").dates == {"may"}


def test_lowercase_pronoun_us_is_not_the_country() -> None:
    assert "us" not in features("Tell us about pricing").entities
    assert "us" in features("Pricing in the US").entities


def test_number_words_and_digits_agree() -> None:
    assert features("two hundred people").numbers == features("200 people").numbers
    assert features("the first prize").numbers == features("the 1st prize").numbers


def test_empty_and_odd_inputs() -> None:
    assert first_difference("", "") is None
    assert first_difference("???", "!!!") is None
    assert first_difference("how", "") is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I send money to my sister?", "How can I send money to my sister?"),
        ("Do you have any vegan options?", "Are there any vegan options?"),
        (
            "How do I get from the airport to the hotel?",
            "How to get from the airport to the hotel?",
        ),
        ("Can my landlord raise the rent?", "Is my landlord allowed to raise the rent?"),
        (
            "How do I send money to my son from my bank?",
            "How do I send money from my bank to my son?",
        ),
    ],
)
def test_fifth_session_words_let_paraphrases_through(a: str, b: str) -> None:
    assert first_difference(a, b) is None


def test_long_statements_say_from_and_to_about_one_thing_freely() -> None:
    a = (
        "Yes, Datasets supports access to cloud storage providers through a filesystem "
        "implementation so you can load and save data easily."
    )
    b = (
        "Datasets can be accessed from cloud storage providers using a filesystem "
        "implementation, which lets you load and save data easily."
    )
    assert not order(features(a), features(b))


def test_a_huge_number_with_a_scale_does_not_overflow() -> None:
    """A float would overflow on 310 digits before "k" and raise (an HTTP 500 in the stage)."""
    assert "1" + "0" * 323 in features("What is 1" + "0" * 320 + "k dollars in euros?").numbers


def test_a_number_written_against_its_unit_is_read_whole() -> None:
    assert features("Is 22mg of melatonin safe?").numbers == frozenset({"22"})
    assert numbers(features("Is 2mg of melatonin safe?"), features("Is 22mg of melatonin safe?"))


@pytest.mark.parametrize(
    ("a", "b"),
    [("How do I concatenate the city and zip code columns in SQL?",
      "How do I concatenate the zip code and city columns in SQL?"),
     ("In Jira, how do I sort issues by priority and due date?",
      "In Jira, how do I sort issues by due date and priority?"),
     ("What is the ratio of boys and girls in a class of 12 boys and 18 girls?",
      "What is the ratio of girls and boys in a class of 12 boys and 18 girls?"),
     ("Compute the cross product of u and v", "Compute the cross product of v and u")],
)  # fmt: skip
def test_two_phrases_joined_the_other_way_round_are_an_order_swap(a: str, b: str) -> None:
    # A red-team pass (eighth session): a sort key, a ratio, a cross product.
    assert order(features(a), features(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [("In Python how do I turn a dict into a JSON string?",
      "In Python how do I turn a JSON string into a dict?"),
     ("Does brown rice have more fiber than white rice?",
      "Does white rice have more fiber than brown rice?"),
     ("How do I convert a Word document to PDF?", "How do I convert a PDF to a Word document?")],
)  # fmt: skip
def test_a_two_word_phrase_swapped_across_a_middle_is_an_order_swap(a: str, b: str) -> None:
    # A fresh held-out set (traps_thirteenth, eleventh session): _swapped sees single words.
    assert order(features(a), features(b))
    assert order(features(b), features(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [("How do I convert miles per gallon to liters per 100 km?",
      "How do I convert liters per 100 km to miles per gallon?"),
     ("Should I paint the walls before installing new floors?",
      "Should I install new floors before painting the walls?"),
     ("Can I convert my LLC to an S corp?", "Can I convert my S corp to an LLC?")],
)  # fmt: skip
def test_spans_of_any_length_swapped_around_a_pivot_are_an_order_swap(a: str, b: str) -> None:
    # A fresh held-out set (traps_fourteenth, twelfth session): served before the span check.
    assert order(features(a), features(b))
    assert order(features(b), features(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [("Can a person with type O blood donate to someone with type A?",
      "Can a person with type A blood donate to someone with type O?"),
     ("If it's 9 AM in Tokyo, what time is it in London?",
      "If it's 9 AM in London, what time is it in Tokyo?"),
     ("Is every square a rectangle?", "Is every rectangle a square?")],
)  # fmt: skip
def test_two_words_exchanged_however_far_apart_are_an_order_swap(a: str, b: str) -> None:
    # A fresh held-out set (traps_fifteenth, thirteenth session): seven words apart, "A" a
    # determiner; no should-hit pair of any set or split is such an exchange.
    assert order(features(a), features(b))
    assert order(features(b), features(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [("Can high blood pressure cause kidney disease?",
      "Can kidney disease cause high blood pressure?"),
     ("Does Medicare pay first and my employer's group health plan pay second?",
      "Does my employer's group health plan pay first and Medicare pay second?"),
     ("If I get a B on the midterm and an A on the final, what's my grade?",
      "If I get an A on the midterm and a B on the final, what's my grade?"),
     ("Can a parent be made to pay for their adult child's care home fees?",
      "Can an adult child be made to pay for their parent's care home fees?")],
)  # fmt: skip
def test_two_spans_exchanged_around_the_same_words_are_an_order_swap(a: str, b: str) -> None:
    # A fresh held-out set (thirteenth session) served these; of every should-hit pair of every
    # set and split, one Quora pair ("the United States' team ... against Ghana" / "Ghana's
    # team ... against the United States") is such an exchange.
    assert order(features(a), features(b))
    assert order(features(b), features(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [("Is jailbreaking an iPhone 6s worth it?", "Is it worth jailbreaking an iPhone 6s?"),
     ("How was education during the occupation like in Singapore?",
      "How was education like in Singapore during the occupation?"),  # one span moved
     ("What's the difference between a 401k and an IRA?",
      "What's the difference between an IRA and a 401k?")],  # coordination: its own check
)  # fmt: skip
def test_a_span_and_its_placeholder_or_a_moved_span_is_no_exchange(a: str, b: str) -> None:
    x, y = features(a), features(b)
    assert not _exchanged(_roles(x.words), _roles(y.words))
    assert not _exchanged(_roles(x.relations), _roles(y.relations))


@pytest.mark.parametrize(
    ("a", "b"),
    [("what time is it in tokyo", "what time it is in tokyo"),  # function words only
     ("Is it safe to eat raw eggs now?", "Is it safe now to eat raw eggs?"),  # moved, not exchanged
     ("Which is better, a fixed or a variable rate?",
      "Which is better, a fixed or a variable rate mortgage?")],
)  # fmt: skip
def test_no_exchange_of_two_words_is_no_transposition(a: str, b: str) -> None:
    assert not order(features(a), features(b))


def test_a_swap_is_seen_where_the_other_text_repeats_a_word() -> None:
    # A fresh held-out set (traps_fifteenth): the last "I" of the second text hid its first.
    a = "My friend owes me $50 and won't pay, what should I do?"
    b = "I owe my friend $50 and can't pay, what should I do?"
    assert order(features(a), features(b))
    assert order(features(b), features(a))


def test_words_repeated_inside_one_text_are_no_swap() -> None:
    a = "My friend told me he loves me. I love him. What should I do?"  # "me ... I love him"
    assert not order(features(a), features(a.rstrip("?")))


@pytest.mark.parametrize(
    ("a", "b"),
    [("Should I paint before installing floors?", "Should I install floors after painting?"),
     ("Can I convert my LLC to an S corp?", "Can I turn my LLC into an S corp?"),
     ("How long should I rest before running a marathon?",
      "How long should I rest before a marathon?")],
)  # fmt: skip
def test_the_same_relation_said_otherwise_is_no_span_swap(a: str, b: str) -> None:
    assert not order(features(a), features(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [("how do I get from the airport to downtown", "how do I get downtown from the airport"),
     ("How do I convert a Word document to PDF?", "How can I convert a Word document to a PDF?"),
     ("Does brown rice have more fiber than white rice?",
      "Is there more fiber in brown rice than in white rice?")],
)  # fmt: skip
def test_the_same_order_in_other_words_is_no_swap(a: str, b: str) -> None:
    assert not order(features(a), features(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [("is it okay to give her aspirin?", "should I avoid giving her aspirin?"),
     ("is it safe to hike at midday?", "is hiking at midday dangerous?"),
     ("is it okay to use summer diesel?", "is summer diesel a bad idea?"),
     ("Is sudo pip a good idea?", "Is it risky to install packages with sudo pip?"),
     ("Is it not safe to leave rice out?", "Is it safe to leave rice out?")],
)  # fmt: skip
def test_a_yes_no_question_reworded_into_its_opposite_is_a_stance_flip(a: str, b: str) -> None:
    # A red-team pass (ninth session): "okay" / "avoid" flips that the verifier served.
    assert stance(features(a), features(b)) and stance(features(b), features(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [("is it okay to give her aspirin?", "is aspirin safe for her?"),
     ("should I avoid md5 for hashing?", "is md5 a bad idea for hashing?"),
     ("How do I bake bread?", "What's the best way to bake bread?"),
     ("Is it not okay to chew gum there?", "Should I avoid chewing gum there?")],
)  # fmt: skip
def test_the_same_stance_or_none_is_no_flip(a: str, b: str) -> None:
    assert not stance(features(a), features(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [("What's the difference between baking soda and baking powder?",
      "How do baking powder and baking soda differ?"),
     ("What's the difference between a credit union and a bank?",
      "What's the difference between a bank and a credit union?"),
     ("What is the difference between a debit card and a credit card?",
      "How do credit cards and debit cards differ?"),
     ("How are Python and Ruby similar?", "How are Ruby and Python similar?"),
     ("how can you tell crocodiles and alligators apart?",
      "how can you tell alligators and crocodiles apart?"),
     ("Which is older, the Colosseum or the Parthenon?",
      "Which is older, the Parthenon or the Colosseum?"),
     ("Is it better to lease or buy a car?", "Is it better to buy or lease a car?")],
)  # fmt: skip
def test_the_two_things_a_comparison_compares_may_come_in_either_order(a: str, b: str) -> None:
    # The written sets' paraphrases the order guard refused (fifteenth session).
    assert not order(features(a), features(b))
    assert not order(features(b), features(a))
    assert first_difference(a, b) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [("In matplotlib, how do I plot revenue vs time?",
      "In matplotlib, how do I plot time vs revenue?"),
     ("How do I calculate the percent change between the old price and the new price?",
      "How do I calculate the percent change between the new price and the old price?"),
     ("Give me walking directions between Central Station and the Grand Hotel",
      "Give me walking directions between the Grand Hotel and Central Station"),
     ("In Jira, how do I sort issues by priority and due date?",
      "In Jira, how do I sort issues by due date and priority?"),
     ("How does converting Celsius to Fahrenheit compare with other conversions?",
      "How does converting Fahrenheit to Celsius compare with other conversions?"),
     ("Does the subject or the verb come first in a Japanese sentence?",
      "Does the verb or the subject come first in a Japanese sentence?"),
     ("Compare a used Tesla Model 3 and a new Toyota Camry on total cost of ownership.",
      "Compare a new Tesla Model 3 and a used Toyota Camry on total cost of ownership."),
     ("What's the difference between a 15-year mortgage at 6% and a 30-year mortgage at 7%?",
      "What's the difference between a 15-year mortgage at 7% and a 30-year mortgage at 6%?")],
)  # fmt: skip
def test_an_exchange_outside_a_comparison_is_still_an_order_swap(a: str, b: str) -> None:
    # Red-team pairs (eighth and fifteenth sessions): neither "vs" nor "between" alone makes a
    # comparison; a comparison word elsewhere does not undo a swap it does not join; "first"
    # points at one of the two by its place; an exchange must make the texts agree.
    assert order(features(a), features(b))
    assert order(features(b), features(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [("Is it ok to feed my dog cat food?", "Is it ok to feed my cat dog food?"),
     ("Are all integers rational numbers?", "Are all rational numbers integers?"),
     ("Are all rhombuses squares?", "Are all squares rhombuses?")],
)  # fmt: skip
def test_two_things_exchanged_side_by_side_are_an_order_swap(a: str, b: str) -> None:
    # A fresh held-out set (traps_eighteenth, fifteenth session), read once.
    assert order(features(a), features(b))
    assert order(features(b), features(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [("How do I politely decline a job offer?", "how do i decline a job offer politely"),
     ("Who will win the 2015 IPL?", "Who will win IPL 2015?"),
     ("Why is Delhi a union territory?", "Why Delhi is a union territory?")],
)  # fmt: skip
def test_a_manner_a_number_or_a_verb_moved_beside_a_word_is_no_swap(a: str, b: str) -> None:
    assert not order(features(a), features(b))
