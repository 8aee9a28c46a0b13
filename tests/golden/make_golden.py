"""Writes tests/golden/preprocess.jsonl: inputs and pysentimiento 0.7.3's own preprocess_tweet
output for es, en, it and pt. The Rust tests compare every line byte for byte.

Inputs: hand-written edge cases for every rule, the 1,000 Spanish tweets of evomsa 2.0.14's test
data (real text), seeded random combinations of fragments, and calls with non-default arguments.
Run by `make golden` in a throw-away venv with pysentimiento==0.7.3 and emoji==2.10.1 (--no-deps;
preprocessing.py imports only re and emoji):

    python tests/golden/make_golden.py EVOMSA_SDIST.tar.gz
"""
import json
import pathlib
import random
import sys
import tarfile

import importlib.metadata

import emoji

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))
from pysentimiento_preprocessing import module  # noqa: E402

preprocessing = module()
preprocess_tweet, replacements = preprocessing.preprocess_tweet, preprocessing.replacements
pys_version = importlib.metadata.version("pysentimiento")

OUT = pathlib.Path(__file__).resolve().parent / "preprocess.jsonl"
LANGS = ["es", "en", "it", "pt"]
TLDS = "com co org edu gov uk net ca de jp fr au us ru ch it nl se no es mil iq io ac ly sm".split()

HANDLES = [
    "@usuario hola", "hola @juan_perez qué tal", "@", "@@", "@ @", "a@b", "@abcdefghijklmnopqrstu",
    "@abcdefghijklmno", "@abcdefghijklmnop", "@_x_", "@Ñandú", "@123 @456", "(@pepe)", "@pepe:",
    "RT @medio: noticia", ".@cuenta", "@ñ", "@a.b", "juan@gmail.com", "correo: ana.garcia@empresa.es",
    "x@y.co", "maria_lopez99@hotmail.com escríbeme", "@@@hola", "email@sub.dominio.org.ar",
]
URLS = [
    "mira https://t.co/abc123", "mira http://t.co/AbC", "https://t.co/xyz al inicio", "google.com al inicio",
    " google.com", "(google.com)", "visita www.google.com/ruta/1", "ver ejemplo.es/ruta/a/b", "x example.community",
    "x ñandú.com", "x _x.com", "x a.b.c.d.e.f.g.com", "x a.b.com/", "x a.b.com/-x", "x http://a.b.c/x",
    "x http://localhost:8080", "x https://www.elpais.com/politica/2020-01-01/noticia.html",
    "x bit.ly/3abc", "x 192.168.1.1", "x sub.dominio.gob.mx", "xhttp://t.co/a", "x.com", "1 x.com", "é x.com",
    "x HTTPS://T.CO/A", "x https://t.co/a https://t.co/b", "x-google.com", "x_google.com", "x\ngoogle.com",
    "x\tgoogle.com", "x fb.me/x", "x amzn.to/abc", "x tinyurl.com/abc?x=1", "x youtu.be/abc", "x es.wikipedia.org/wiki/España",
    "x wikipedia.org/wiki/Espa%C3%B1a", "x mi.web.es.", "x http://ñ.es", "x http://", "x www.", "x .com", "x a..com",
]
URLS += [f"visita pagina.{tld}/x y sitio.{tld}" for tld in TLDS] + [f"x www.ejemplo.{tld}" for tld in TLDS]
HASHTAGS = [
    "#HolaMundo", "#hola_mundo", "#2020", "#2020Vision", "#ÉxitoTotal", "#niño", "#ABC", "#aB", "a#b", "##doble",
    "#", "# hola", "#_", "#día_1", "#çà", "#東京Tokyo", "#東京", "#MeToo #NiUnaMenos", "texto #FelizLunes!",
    "#iPhone12Pro", "#COVID19", "#covid_19", "#HTMLyCSS", "#Año2020", "#ÁrbolDeNavidad", "é#hola", "_#hola",
    "-#hola", "(#hola)", "#hola#adios", "#ΣοφίαA", "#नमस्तेa", "#é\u0301a", "#a\u0301b", "#x²", "#Ⅻa",
    "#日本語abc", "#İstanbulA", "#ŁódźA", "#ßA", "#ǅA", "#ΟΔΟΣa", "#AΣ", "#ΣΑΣ_a",
]
CHARS = [f"a{c}b {c}" for c in replacements] + ["~~~", "“hola”", "«entre comillas»", "…", "‼️", "€100", "♥♥♥",
                                                "♡ te quiero", "☻☻", "l’amour", "—guion—", "2×3", "20°C"]
EMOJI = [
    "😀", "me encanta 😍😍😍", "😂😂😂😂😂", "👍🏻", "👍🏿 ok", "👨‍👩‍👧‍👦", "👩‍💻", "🏳️‍🌈", "🏳‍🌈", "🇪🇸", "🇦🇷🇲🇽", "🇪", "🇪x",
    "#️⃣", "#⃣", "1️⃣2️⃣", "❤️", "❤", "♥️", "☺️", "✌🏽", "👨‍🐱", "👨‍", "👨\u200d\u200d👩", "\u200d", "x\u200dy",
    "🏃‍♂️", "🏃\u200dx", "👁️‍🗨️", "👁\ufe0f\u200dx", "🤷🏽‍♀️", "🧑🏾‍🤝‍🧑🏻", "🏻", "🏻🏻", "x🏻", "🦰", "👨‍🦰", "👨🏽‍🦰",
    "😀\ufe0e", "a\ufe0fb", "\ufe0f", "☝", "☝️", "☝🏼", "😀|x|😀", "|hola|", "a|b|c", "||", "|||", "| |", "|_|",
    "🫠", "🫶🏼", "🪿", "🧌", "🥹", "🫡", "🐦‍⬛", "🙂‍↔️", "🫨", "😶‍🌫️", "❤️‍🔥", "❤‍🔥", "🧔‍♀️", "🫱🏻‍🫲🏿",
    "🐈‍⬛", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🏴", "👯‍♀️", "🤼‍♂", "©️", "®", "™️", "〰️", "🅰️", "🆗", "🈁", "Ⓜ️", "⌚", "⏰",
    "😀😃😄😁😆😅🤣😂", "🤔🤔🤔🤔", "💯💯💯", "🔥🔥🔥🔥🔥", "🙏🏻🙏🏻🙏🏻🙏🏻", "👏👏👏", "😭😭😭😭😭😭",
]
LAUGHTER = [
    "jajaja", "JAJAJA", "jajajajjaja", "ajajaj", "jaaaajaaa", "jajaj", "jaja", "jja", "aja", "hahaha", "HAHAHA",
    "jejeje", "jijiji", "kkkk", "kk", "k", "kkk kkkkk", "ahahah", "hahah", "rsrsrs", "jajajaja que risa",
    "Jajajaja", "jajajáj", "ajajajajaja!!!", "jajaJAJA", "hahahaha lol", "ahhhh", "haahhaaa", "jjjjjj", "aaaaaj",
]
REPEATS = [
    "holaaaaa", "!!!!!", "...", "....", "?!?!?!", "nooooo", "siiii", "ññññ", "mmm", "mm", "aaAAaa",
    "\n\n\n\n", "a\n\n\nb", "    espacios", "\t\t\ttabs", "123444445", "😂😂", "🙏🙏🙏🙏", "--->", "=)))))",
]
SPACE = ["", " ", "   ", "\t", "\n", "\r\n", " \u00a0 ", "\u3000hola\u3000", "\x1c hola \x1f", "\u200bhola\u200b",
         "\u2028x\u2029", " hola ", "\thola\n", "\x85x\x85", "\u180ex", "\ufeffhola"]
SCRIPTS = [
    "مرحبا بالعالم", "اللغة العربية", "你好，世界！", "日本語のテキストーです", "Привет, мир!", "Γειά σου Κόσμε",
    "שלום עולם", "नमस्ते दुनिया", "안녕하세요 세계", "สวัสดีชาวโลก", "Xin chào thế giới", "Tiếng Việt có dấu",
    "Ünïcödé àçcéñtš", "ﬁ ligature", "ǅemal", "İstanbul", "straße", "ΣΑΣ", "e\u0301", "Zalgo t̷̢e̵x̶t",
]
MIXED = [
    "@usuario mira esto https://t.co/abc #MeEncanta 😍😍😍 jajajaja",
    "RT @noticias: El #Gobierno anuncia medidas... https://t.co/xyz123 vía @elpais",
    "Qué día tan bonitooooo!!! ☀️☀️ #FelizMartes @amiga",
    "No puedo más con esto 😭😭😭😭 #MalDía",
    "@a @b @c hola a todos 👋🏽",
    "Lo mejor del año 🎉🎉 https://bit.ly/abc #2024 #AñoNuevo jajajaja",
    "odio los lunes 😡😡😡😡😡 #lunes",
    "que alguien me explique esto |||| jajaj",
]


def evomsa_tweets(sdist):
    with tarfile.open(sdist) as tar:
        member = tar.extractfile("evomsa-2.0.14/EvoMSA/tests/tweets.json")
        return [json.loads(line)["text"] for line in member.read().decode("utf-8").splitlines() if line.strip()]


def random_combos(rng, n):
    pools = [HANDLES, URLS, HASHTAGS, CHARS, EMOJI, LAUGHTER, REPEATS, SPACE, SCRIPTS]
    words = "hola que tal muy bien gracias el la de y no me gusta odio amor hoy mañana".split()
    out = []
    for _ in range(n):
        parts = [rng.choice(rng.choice(pools)) if rng.random() < 0.5 else rng.choice(words)
                 for _ in range(rng.randint(1, 8))]
        out.append(rng.choice([" ", "", "  ", "\n"]).join(parts))
    return out


def random_args(rng):
    args = {}
    if rng.random() < 0.3:
        args["shorten"] = rng.choice([None, 0, 1, 2, 4])
    for flag in ["preprocess_hashtags", "char_replace", "demoji", "normalize_laughter", "preprocess_handles"]:
        if rng.random() < 0.25:
            args[flag] = False
    if rng.random() < 0.2:
        args["emoji_wrapper"] = rng.choice(["", "emo", "[EMOJI]"])
    for token in ["user_token", "url_token", "hashtag_token"]:
        if rng.random() < 0.15:
            args[token] = rng.choice(["", "[TOKEN]", "xx"])
    return args or {"shorten": 2}


def main():
    if pys_version != "0.7.3" or emoji.__version__ != "2.10.1":
        sys.exit(f"need pysentimiento 0.7.3 and emoji 2.10.1, have {pys_version} and {emoji.__version__}")
    rng = random.Random(20261127)
    handwritten = HANDLES + URLS + HASHTAGS + CHARS + EMOJI + LAUGHTER + REPEATS + SPACE + SCRIPTS + MIXED
    tweets = evomsa_tweets(sys.argv[1])
    cases = [(t, {}) for t in handwritten + tweets + random_combos(rng, 400)]
    pool = handwritten + tweets[:200]
    cases += [(rng.choice(pool), random_args(rng)) for _ in range(300)]
    with OUT.open("w", encoding="utf-8") as f:
        for text, args in cases:
            row = {"text": text, "args": args}
            row.update({lang: preprocess_tweet(text, lang=lang, **args) for lang in LANGS})
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}: {len(cases)} cases x {len(LANGS)} languages "
          f"({len(handwritten)} hand-written, {len(tweets)} tweets)")


if __name__ == "__main__":
    main()
