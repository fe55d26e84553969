"""The redactor with a fleet's worth of secrets: thousands of instance tokens (list
answers register them) are looked up by length instead of one regex alternation, and
redaction stays exact: every occurrence of every spelling masked, nothing else touched."""

from __future__ import annotations

import random
import re
import string
import threading
import uuid
from urllib.parse import quote, quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from tuiapp.secrets import MASK, Redactor

UNRESERVED = string.ascii_letters + string.digits + "-_.~"


def reference(secrets: list[str], text: str) -> str:
    """The brute-force answer for plain secrets: every occurrence of every secret found
    with ``str.find``, overlapping occurrences merged, each stretch replaced by MASK."""
    covered: list[tuple[int, int]] = []
    for secret in secrets:
        at = text.find(secret)
        while at >= 0:
            covered.append((at, at + len(secret)))
            at = text.find(secret, at + 1)
    covered.sort()
    out, done, current = [], 0, None
    for begin, end in covered:
        if current is not None and begin < current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            out += [text[done : current[0]], MASK]
            done = current[1]
        current = (begin, end)
    if current is not None:
        out += [text[done : current[0]], MASK]
        done = current[1]
    out.append(text[done:])
    return "".join(out)


def fleet_tokens(count: int, rng: random.Random) -> list[str]:
    """Tokens shaped like the providers' instance tokens, of several lengths."""
    tokens = []
    for index in range(count):
        match index % 3:
            case 0:
                tokens.append(str(uuid.UUID(int=rng.getrandbits(128))).upper())
            case 1:
                tokens.append("sim-hsit-" + "".join(rng.choices("0123456789abcdef", k=24)))
            case _:
                tokens.append("".join(rng.choices(UNRESERVED, k=rng.randint(8, 40))))
    return tokens


def test_thousands_of_tokens_are_each_masked_and_nothing_else() -> None:
    rng = random.Random(7)
    tokens = fleet_tokens(3000, rng)
    redactor = Redactor(tokens)
    assert len(redactor) == len(set(tokens))
    for token in rng.sample(tokens, 300):
        near = token[:-1] + ("0" if token[-1] != "0" else "1")  # one character off
        text = (
            f"GET /instance?access_token={token}&x=1 failed; {near} is not one; "
            f'body {{"token":"{token}"}} id=xx{token}yy {token}{token}'
        )
        expected = (
            f"GET /instance?access_token={MASK}&x=1 failed; {near} is not one; "
            f'body {{"token":"{MASK}"}} id=xx{MASK}yy {MASK}{MASK}'
        )
        if any(other in near for other in tokens):  # never, but then the test is wrong
            continue
        assert redactor.redact(text) == expected
    ordinary = "HTTP 503 from the provider: upstream timed out after 10 s (evolution)"
    assert redactor.redact(ordinary) == ordinary


def test_secrets_with_url_encoded_spellings_next_to_thousands_of_plain_ones() -> None:
    rng = random.Random(3)
    redactor = Redactor(fleet_tokens(2000, rng))
    odd = "tok/en+with space&="
    redactor.add(odd)
    plain = "PLAIN-0123456789abcdef"
    redactor.add(plain)
    text = f"a {odd} b {quote(odd, safe='')} c {quote_plus(odd)} d {quote(odd).lower()} {plain}"
    assert redactor.redact(text) == f"a {MASK} b {MASK} c {MASK} d {MASK} {MASK}"
    # an encoded secret that overlaps the end of a plain one: the whole stretch is one
    # mask (a single regex alternation masked the plain one and left "/x y" to be read)
    redactor.add("cdef/x y")
    assert redactor.redact(f"<{plain}/x y>") == f"<{MASK}>"
    assert redactor.redact(f"<{plain}%2Fx+y>") == f"<{MASK}>"


def test_secrets_added_after_use_are_masked_at_once() -> None:
    rng = random.Random(11)
    tokens = fleet_tokens(1500, rng)
    redactor = Redactor(tokens[:1000])
    late = tokens[1000:]
    text = " ".join(late)
    assert redactor.redact(text) == text  # not registered yet
    for token in late:
        redactor.add(token)
    assert redactor.redact(text) == " ".join([MASK] * len(late))
    new_length = "N" * 77  # a length no token had: the length index grows
    redactor.add(new_length)
    assert redactor.redact(f"<{new_length}>") == f"<{MASK}>"


secret_words = st.text(alphabet="abcAB-_.~12", min_size=4, max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(secret_words, min_size=1, max_size=8),
    st.lists(st.text(alphabet="abcAB-_.~12 /%+x", max_size=16), max_size=8),
    st.integers(min_value=0, max_value=2000),
)
def test_overlapping_secrets_among_many_are_masked_exactly(
    secrets: list[str], filler: list[str], crowd: int
) -> None:
    """Secrets that overlap, nest and touch, among up to 2,000 others: the result is the
    brute-force one (every occurrence masked, overlaps as one stretch)."""
    others = fleet_tokens(crowd, random.Random(crowd))
    redactor = Redactor([*others, *secrets])
    pieces = list(filler)
    for index, secret in enumerate(secrets):
        pieces.insert(index % (len(pieces) + 1), secret + secret[: len(secret) // 2])
    text = "".join(pieces)
    assert redactor.redact(text) == reference([*others, *secrets], text)
    for secret in secrets:
        assert secret not in redactor.redact(text)


def test_matches_the_single_regex_it_replaces_when_secrets_do_not_overlap() -> None:
    """At 1,000 secrets the answer is the one regex alternation's (the old redactor)."""
    rng = random.Random(5)
    tokens = fleet_tokens(1000, rng)
    redactor = Redactor(tokens)
    old = re.compile("|".join(map(re.escape, sorted(set(tokens), key=len, reverse=True))))
    for _ in range(200):
        chosen = rng.sample(tokens, 3)
        text = f"{chosen[0]} and '{chosen[1]}'; ({chosen[2]})! {rng.random()}"
        assert redactor.redact(text) == old.sub(MASK, text)


def test_adding_and_redacting_from_threads_at_once() -> None:
    rng = random.Random(9)
    tokens = fleet_tokens(4000, rng)
    redactor = Redactor(tokens[:100])
    failures: list[BaseException] = []
    start = threading.Barrier(3)

    def add(chunk: list[str]) -> None:
        start.wait()
        for token in chunk:
            redactor.add(token)

    def redact() -> None:
        start.wait()
        try:
            for token in tokens[:100] * 20:
                assert redactor.redact(f"[{token}]") == f"[{MASK}]"
        except BaseException as exc:  # reported below, with the thread's own assert
            failures.append(exc)

    threads = [
        threading.Thread(target=add, args=(tokens[100:2000],)),
        threading.Thread(target=add, args=(tokens[2000:],)),
        threading.Thread(target=redact),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert redactor.redact(" ".join(tokens)) == " ".join([MASK] * len(tokens))


def test_a_text_shorter_than_every_secret_is_not_scanned_but_one_as_long_is_masked() -> None:
    """Texts shorter than the shortest secret come back as they are (no spelling of a
    secret is shorter than it); the length at which that stops holds every spelling."""
    redactor = Redactor(["tok-7f3a-PLANT", "ab cd"])  # 14 plain, 5 with a blank
    assert redactor.redact("") == ""
    assert redactor.redact("ab c") == "ab c"  # 4 < 5: nothing could match
    assert redactor.redact("ab+cd") == MASK  # the blank form-encoded: as long as the secret
    assert redactor.redact("ab%20cd") == MASK
    assert redactor.redact("x tok-7f3a-PLANT") == f"x {MASK}"
    redactor.add("tiny")  # a shorter secret lowers the bar at once
    assert redactor.redact("tiny") == MASK
