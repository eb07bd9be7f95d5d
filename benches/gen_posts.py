#!/usr/bin/env python3
"""Writes N realistic Hortus posts into SITE/content/posts for the serving benchmark.

Bodies are 200-3000 characters of Markdown: paragraphs with emphasis, inline code, links,
#hashtags and a few @user@host mentions; some lists, code blocks, quotes and headings. Front
matter varies the way a real site does: most posts public, some unlisted or followers-only, some
with a title, tags, a content warning or an explicit slug. Seeded, so every run writes the same
files. Standard library only.

Usage: gen_posts.py SITE_DIR COUNT [SEED]
Prints `bench_slug=<slug>` for a public, mid-sized post in the middle of the archive: the page
the benchmark requests.
"""

import datetime
import os
import random
import sys

WORDS = (
    "garden soil seed compost bed tomato bean squash rain frost spring summer autumn winter "
    "morning evening server federation protocol inbox outbox follower timeline thread reply "
    "post note draft markdown static site database query index cache latency memory rust "
    "compiler borrow lifetime trait async runtime socket request response header signature "
    "key certificate domain handle neighbour community moderation block allow list policy "
    "bicycle train walk river bridge library coffee bread kitchen window light shadow bird "
    "fox owl sparrow robin hedge path stone wall gate door roof chimney cloud wind sun moon "
    "the a of and to in is it that was for on with as at by this from but not or have be are "
    "we you they some many few more less small large quiet slow quick careful simple plain"
).split()
HASHTAGS = ("rust fediverse activitypub gardening selfhosting sqlite indieweb photography "
            "cycling books music linux privacy opensource coffee birds weekly").split()
MENTIONS = ("@alice@example.social @bob@mastodon.example @carol@fedi.example.org "
            "@dave@hachyderm.example @erin@social.example.net").split()
LANGS = ("rust", "toml", "sh", "python", "")
CODE = {
    "rust": 'fn main() {\n    let greeting = "hello, garden";\n    println!("{greeting}");\n}',
    "toml": '[site]\nposts_per_page = 20\ntitle = "My garden"',
    "sh": "hortus publish && hortus serve\ncurl -s http://127.0.0.1:8080/ | head",
    "python": "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
    "": "plain text block\n  indented line\nlast line",
}


def sentence(rng):
    n = rng.randint(6, 18)
    words = [rng.choice(WORDS) for _ in range(n)]
    for i in range(n):
        r = rng.random()
        if r < 0.03:
            words[i] = f"*{words[i]}*"
        elif r < 0.05:
            words[i] = f"**{words[i]}**"
        elif r < 0.07:
            words[i] = f"`{words[i]}`"
        elif r < 0.085:
            words[i] = f"[{words[i]}](https://example.org/{words[i]}/{rng.randint(1, 999)})"
    if rng.random() < 0.12:
        words.append("#" + rng.choice(HASHTAGS))
    if rng.random() < 0.03:
        words.insert(rng.randint(0, len(words)), rng.choice(MENTIONS))
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice(".....?!")


def paragraph(rng):
    return " ".join(sentence(rng) for _ in range(rng.randint(1, 4)))


def block(rng):
    r = rng.random()
    if r < 0.62:
        return paragraph(rng)
    if r < 0.76:
        marker = rng.choice(("-", "*", "1."))
        return "\n".join(f"{marker} {sentence(rng)}" for _ in range(rng.randint(2, 5)))
    if r < 0.86:
        lang = rng.choice(LANGS)
        return f"```{lang}\n{CODE[lang]}\n```"
    if r < 0.94:
        return "> " + sentence(rng)
    return "## " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))).capitalize()


def body(rng, target):
    """Markdown blocks until the body reaches `target` characters (200 <= len <= 3000)."""
    blocks = [paragraph(rng)]
    size = len(blocks[0])
    while size < target:
        b = block(rng)
        if size + 2 + len(b) > 3000:
            if size >= 200:
                break
            continue
        blocks.append(b)
        size += 2 + len(b)
    text = "\n\n".join(blocks)
    while len(text) < 200:  # a single short opening paragraph
        text += " " + sentence(rng)
    return text[:3000] if len(text) > 3000 else text


def toml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    site, count = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 42)
    out = os.path.join(site, "content", "posts")
    os.makedirs(out, exist_ok=True)
    start = datetime.datetime(2019, 1, 1, 8, 0, 0, tzinfo=datetime.timezone.utc)
    bench = count // 2
    total_chars = 0
    for i in range(count):
        date = start + datetime.timedelta(hours=4 * i, minutes=rng.randint(0, 200))
        title_words = [rng.choice(WORDS) for _ in range(rng.randint(2, 7))]
        title = " ".join(title_words).capitalize()
        stem = f"{date:%Y-%m-%d}-{i:05d}-" + "-".join(title_words[:4])
        fm = []
        if i == bench or rng.random() < 0.6:
            fm.append(f"title = {toml_str(title)}")
        fm.append(f"date = {date:%Y-%m-%dT%H:%M:%SZ}")
        tags = rng.sample(HASHTAGS, rng.choice((0, 0, 1, 1, 2, 3)))
        if tags:
            fm.append("tags = [" + ", ".join(toml_str(t) for t in tags) + "]")
        v = rng.random()
        visibility = "public" if i == bench or v < 0.9 else ("unlisted" if v < 0.97 else "followers")
        fm.append(f'visibility = "{visibility}"')
        if i != bench and rng.random() < 0.03:
            fm.append(f"summary = {toml_str('CW: ' + rng.choice(WORDS))}")
        slug = None
        if rng.random() < 0.1:
            slug = f"note-{i:05d}"
            fm.append(f'slug = "{slug}"')
        # Lengths skew short, as on a microblog: about half under 1000 characters.
        target = 1600 if i == bench else int(200 + 2800 * rng.random() ** 1.6)
        text = body(rng, target)
        total_chars += len(text)
        with open(os.path.join(out, stem + ".md"), "w", encoding="utf-8") as f:
            f.write("+++\n" + "\n".join(fm) + "\n+++\n" + text + "\n")
        if i == bench:
            # Same rule as hortus's slugify for these ASCII names.
            print(f"bench_slug={slug or stem}")
    print(f"posts={count} body_chars_mean={total_chars // max(count, 1)}")


if __name__ == "__main__":
    main()
