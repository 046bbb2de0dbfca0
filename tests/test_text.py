"""clean_text on real scraped debris, and the Analyzer's terms; hypothesis for crash-freedom and idempotency."""

from __future__ import annotations

import pickle
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recommender import Analyzer, Article, clean_text
from recommender.text import default_stopwords

STOP = default_stopwords()
EDGE = " ,;-\u2013\u2014"


def unigrams(text: str) -> list[str]:
    return Analyzer(ngram_range=(1, 1), title_weight=1)(text)


# --- clean_text: concrete debris from the scraped corpus -----------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        # UTF-8 read as Mac Roman: quotes, apostrophes and no-break spaces
        ("Kata ‚ÄúHalo‚Äù dunia¬†ini", "Kata “Halo” dunia ini"),
        ("Millie Bobby Brown‚Äôs Eleven, Finn Wolfhard‚Äôs Mike", "Millie Bobby Brown’s Eleven, Finn Wolfhard’s Mike"),
        ("Harga¬†naik¬†lagi", "Harga naik lagi"),
        # UTF-8 read as Latin-1 / Windows-1252
        ("Kafe CafÃ© di Jakarta", "Kafe Café di Jakarta"),
        ("Dia berkata â€œyaâ€\x9d", "Dia berkata “ya”"),
    ],
)
def test_mojibake_repaired(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_correct_unicode_left_alone() -> None:
    for text in ["Café “Kopi” — Jakarta", "Ukuran 10 °C", "Suhu 30° di Bogor", "Élodie dan Zoë"]:
        assert clean_text(text) == text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Satu, , dua, ,, tiga", "Satu, dua, tiga"),
        ("Polisi menemukan,,,barang bukti", "Polisi menemukan,barang bukti"),
        ("Warga ; , mengungsi", "Warga , mengungsi"),
        ("Banjir melanda.,,Warga mengungsi", "Banjir melanda.,Warga mengungsi"),
    ],
)
def test_link_holes_collapsed(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (", , - Jakarta hujan deras", "Jakarta hujan deras"),
        ("- Serial,menjadi salah satu serial", "Serial,menjadi salah satu serial"),
        ("  ,  Warga mengungsi ,  ", "Warga mengungsi"),
        ("— Polisi menangkap pelaku", "Polisi menangkap pelaku"),
        (", ; , ", ""),
        ("-", ""),
    ],
)
def test_leading_and_trailing_debris_removed(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("PEKANBARU (INDOVIZKA) - Polisi menangkap dua pelaku", "Polisi menangkap dua pelaku"),
        ("Jakarta - Presiden Joko Widodo meresmikan", "Presiden Joko Widodo meresmikan"),
        ("KOMPAS.com - Seekor ular berkaki ditemukan", "Seekor ular berkaki ditemukan"),
        ("KOMPAS.COM - Seekor ular", "Seekor ular"),
        ("JAKARTA – Harga emas naik", "Harga emas naik"),
        ("KOTA BANDUNG -- Wali kota meresmikan", "Wali kota meresmikan"),
        ("Manchester- Manchester United menang", "Manchester United menang"),
        ("Phillip Island - Marc Marquez juara", "Marc Marquez juara"),
        ("Kapanlagi.com - Penyanyi itu menikah", "Penyanyi itu menikah"),
        (", - Jakarta - Hujan turun", "Hujan turun"),
    ],
)
def test_datelines_removed(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        # the most common dateline forms in the corpus (336 bodies): place and outlet joined by a comma
        ("TEMPO.CO, Jakarta - Presiden Joko Widodo meresmikan", "Presiden Joko Widodo meresmikan"),
        ("TEMPO.CO, Tangerang Selatan - Banjir melanda", "Banjir melanda"),
        ("JAKARTA, KOMPAS.com - Harga emas naik", "Harga emas naik"),
        ("PAMEKASAN, KOMPAS.com – Warga mengungsi", "Warga mengungsi"),
    ],
)
def test_datelines_with_a_comma_removed(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    "text",
    [
        "Isu pro-kontra muncul di DPR",
        "Harga naik - kata dia - sejak Senin",
        "Skor akhir 2 - 1 untuk Persija",
        "2019 - tahun yang berat",
        "menurut dia - dan juga mereka",
        "Polisi menangkap Andi - pelaku pencurian",
        # real bodies: a sentence opening with capitalised words is not a dateline
        "Wafatnya Presiden Indonesia Ke- 3 Prof. Dr. Ing. H. Bacharuddin Jusuf Habibie Rabu, 11 September 2019",
        "PT Astra International Tbk - Peugeot Sales Operation (Astra Peugeot) terus berupaya",
    ],
)
def test_dashes_that_are_not_datelines_kept(text: str) -> None:
    assert clean_text(text) == text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (
            "Banjir melanda.,Baca juga: Banjir Besar Landa Kota Bekasi,Warga mengungsi",
            "Banjir melanda.,Warga mengungsi",
        ),
        ("Gempa terjadi,BACA JUGA : Gempa Lagi,Warga panik", "Gempa terjadi,Warga panik"),
        ("Gempa terjadi,Simak juga: Video Gempa,Warga panik", "Gempa terjadi,Warga panik"),
        ("Gempa terjadi,Lihat Juga: Foto Gempa,Warga panik", "Gempa terjadi,Warga panik"),
        ("Gempa terjadi,Baca pula Gempa Lain,Warga panik", "Gempa terjadi,Warga panik"),
        ("Baca juga: Judul Lain", ""),
    ],
)
def test_baca_juga_removed_up_to_next_comma(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_baca_juga_stops_at_a_line_break() -> None:
    """The headline after "Baca juga" ends at the paragraph break (bodies exported with line breaks)."""
    cleaned = clean_text("Isi berita.\nBaca juga: Judul Lain\nParagraf berikut tanpa koma sampai akhir")
    assert "Judul Lain" not in cleaned
    assert cleaned.startswith("Isi berita.")
    assert cleaned.endswith("Paragraf berikut tanpa koma sampai akhir")


def test_byline_stops_at_a_line_break() -> None:
    cleaned = clean_text("Penulis: Budi Santoso\nBanjir melanda Bekasi")
    assert "Budi" not in cleaned
    assert cleaned.endswith("Banjir melanda Bekasi")


def test_ordinary_membaca_kept() -> None:
    assert clean_text("Ia gemar membaca juga menulis") == "Ia gemar membaca juga menulis"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("loading... Presiden tiba", "Presiden tiba"),
        ("Presiden tiba,Loading...,Warga menyambut", "Presiden tiba,Warga menyambut"),
        ("Teks [Gambas:Video 20detik] lagi", "Teks lagi"),
        ("Teks [gambas:instagram] lagi", "Teks lagi"),
        ("Tampil cantik #GrowFearless with FIMELA", "Tampil cantik"),
        ("Berita selesai. (rin/nds)", "Berita selesai."),
        ("Berita selesai. (mcy / cas / rin)", "Berita selesai."),
        ("Pertandingan berakhir,(rin/nds),Paragraf baru", "Pertandingan berakhir,Paragraf baru"),
        ("Klik di sini (*) untuk video ( ,) lainnya ()", "Klik di sini untuk video lainnya"),
        ("Isi berita,Penulis: Budi Santoso", "Isi berita"),
        ("Isi berita,Penulis: Budi Santoso,Editor: Ani", "Isi berita"),
        ("Isi berita,Reporter : Andi,Paragraf", "Isi berita,Paragraf"),
        ("Isi berita,Sumber: Kompas.com", "Isi berita"),
        ("Isi berita,Pewarta: Ani\nEditor: Budi", "Isi berita"),
    ],
)
def test_web_debris_removed(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    "text",
    [
        # acronyms and place names in parentheses are words, not editor initials
        "Komisi Pemberantasan Korupsi (KPK) menangkap bupati",
        "Badan Meteorologi, Klimatologi, dan Geofisika (BMKG) mencatat gempa",
        "Dewan Perwakilan Rakyat (DPR) mengesahkan RUU",
        "Kabupaten Indragiri Hulu (Inhu) dilanda kabut asap",
    ],
)
def test_parenthesised_acronyms_kept(text: str) -> None:
    assert clean_text(text) == text


def test_parenthesised_one_letter_and_long_words_kept() -> None:
    assert clean_text("Tersangka (X) dan (ABCDE) diperiksa") == "Tersangka (X) dan (ABCDE) diperiksa"


def test_mojibake_glued_to_debris_repaired() -> None:
    # ftfy cannot repair a word mixing mojibake and correct text; once "(rin/nds)" is gone, it can
    assert clean_text("Jokowi‚Äôs(rin/nds)“Ia”") == "Jokowi’s “Ia”"
    assert clean_text("Halo‚Äù(rin/nds)dunia") == "Halo” dunia"


def test_whitespace_normalised() -> None:
    assert clean_text("  Satu  dua\t tiga\u00a0 empat\u2003lima  ") == "Satu dua tiga empat lima"
    # a line break may be kept (one, as a paragraph break) but never doubled or padded
    assert clean_text("Satu\n\n\ndua") in ("Satu dua", "Satu\ndua")
    assert clean_text("Satu \r\n \n dua") in ("Satu dua", "Satu\ndua")


def test_empty_and_plain_text() -> None:
    assert clean_text("") == ""
    assert clean_text("   ") == ""
    text = "Presiden Joko Widodo meresmikan jalan tol Trans-Sumatera, Senin (12/1/2019)."
    assert clean_text(text) == text


def test_real_body_from_sample(sample_articles: list[Article]) -> None:
    body = next(a.body for a in sample_articles if a.id == "kapanlagi-8bdb7cb1")
    cleaned = clean_text(body)
    assert body.startswith("- Serial,menjadi")
    assert cleaned.startswith("Serial,menjadi salah satu serial yang paling ditunggu.")
    assert "Millie Bobby Brown’s Eleven" in cleaned
    assert "‚Äô" not in cleaned
    assert clean_text(cleaned) == cleaned


def test_sample_bodies_are_clean_fixpoints(sample_articles: list[Article]) -> None:
    for article in sample_articles:
        for text in (article.title, article.body):
            once = clean_text(text)
            assert clean_text(once) == once, article.id
            assert "‚Äù" not in once and "‚Äú" not in once and "¬†" not in once, article.id


# --- Analyzer -----------------------------------------------------------------------------------


def test_lowercases_and_removes_stopwords() -> None:
    assert unigrams("Banjir Yang melanda JAKARTA dan Bekasi di musim hujan") == [
        "banjir",
        "melanda",
        "jakarta",
        "bekasi",
        "musim",
        "hujan",
    ]


def test_default_stopwords() -> None:
    for word in ["yang", "dan", "di", "ke", "dari", "ini", "itu", "adalah"]:
        assert word in STOP
    for word in ["kompas", "detik", "okezone", "senin", "jumat", "januari", "desember", "wib", "katanya", "ujarnya"]:
        assert word in STOP
    for word in ["banjir", "presiden", "gempa", "jakarta", "ular"]:
        assert word not in STOP


def test_news_boilerplate_removed() -> None:
    text = "Kompas.com Senin 12 Januari 2019 pukul 10.00 WIB detikcom melaporkan gempa katanya, Okezone"
    assert unigrams(text) == ["melaporkan", "gempa"]


def test_numbers_and_single_letters_dropped_alphanumerics_kept() -> None:
    assert unigrams("Pada 2019 ada 10 x korban covid-19 di G20 dan 5G, b") == ["korban", "covid-19", "g20", "5g"]
    assert unigrams("1 2 3 a b c 12.000 3,5") == []


def test_hyphenated_words_kept_whole() -> None:
    assert unigrams("Isu pro-kontra anak-anak") == ["isu", "pro-kontra", "anak-anak"]


def test_bigrams_within_a_sentence_only() -> None:
    terms = Analyzer(title_weight=1)("Banjir bandang melanda, gempa bumi mengguncang. Tanah longsor!")
    bigrams = [t for t in terms if " " in t]
    assert bigrams == ["banjir bandang", "bandang melanda", "gempa bumi", "bumi mengguncang", "tanah longsor"]
    for crossing in ["melanda gempa", "mengguncang tanah"]:
        assert crossing not in terms


@pytest.mark.parametrize("sep", [",", ".", ";", ":", "!", "?", '"', "(", ")", "\n", "“", "”"])
def test_no_bigram_across_a_break(sep: str) -> None:
    terms = Analyzer()(f"gempa bumi{sep} tanah longsor")
    assert "bumi tanah" not in terms
    assert {"gempa bumi", "tanah longsor"} <= set(terms)


def test_bigram_skips_removed_stopwords() -> None:
    # stopwords are dropped before pairing, so neighbours across a stopword pair up
    assert Analyzer()("banjir yang bandang") == ["banjir", "bandang", "banjir bandang"]


def test_unigrams_only() -> None:
    terms = Analyzer(ngram_range=(1, 1))("Banjir bandang melanda Jakarta")
    assert terms == ["banjir", "bandang", "melanda", "jakarta"]
    assert all(" " not in t for t in terms)


def test_trigrams_and_bigrams_only() -> None:
    assert Analyzer(ngram_range=(1, 3))("banjir bandang melanda") == [
        "banjir",
        "bandang",
        "melanda",
        "banjir bandang",
        "bandang melanda",
        "banjir bandang melanda",
    ]
    assert Analyzer(ngram_range=(2, 2))("banjir bandang melanda") == ["banjir bandang", "bandang melanda"]
    assert Analyzer(ngram_range=(3, 3))("banjir bandang, melanda") == []


@pytest.mark.parametrize("weight", [0, 1, 2, 3, 5])
def test_title_weight_repeats_title_terms(weight: int) -> None:
    analyzer = Analyzer(title_weight=weight)
    title_terms = ["banjir", "bandang", "banjir bandang"]
    assert analyzer(("Banjir Bandang", "Gempa bumi")) == title_terms * weight + ["gempa", "bumi", "gempa bumi"]


def test_default_title_weight_is_three() -> None:
    assert Analyzer()(("Banjir", "")) == ["banjir"] * 3


def test_plain_string_is_body() -> None:
    analyzer = Analyzer()
    assert analyzer("Gempa bumi") == analyzer(("", "Gempa bumi")) == ["gempa", "bumi", "gempa bumi"]


def test_body_is_cleaned_before_analysis() -> None:
    body = "JAKARTA (ANTARA) - Banjir melanda,Baca juga: Gempa Bumi Palu,loading... warga (rin/nds)"
    assert unigrams(body) == ["banjir", "melanda", "warga"]


def test_title_keeps_leading_words_before_a_dash() -> None:
    """A title has no dateline: real titles such as these lost their subject to the dateline rule."""
    analyzer = Analyzer(ngram_range=(1, 1), title_weight=1)
    assert analyzer(("Hubungan Bilateral Indonesia - Ukraina Makin Dekat", "")) == [
        "hubungan",
        "bilateral",
        "indonesia",
        "ukraina",
    ]
    assert analyzer(("Proyek Tol Cimanggis - Cibitung Terhambat Pembebasan Lahan", ""))[:3] == [
        "proyek",
        "tol",
        "cimanggis",
    ]
    # the body's dateline is still removed
    assert analyzer(("Tol Cipali", "Jakarta - Presiden meresmikan")) == ["tol", "cipali", "presiden", "meresmikan"]


def test_custom_stopwords_replace_the_default() -> None:
    analyzer = Analyzer(ngram_range=(1, 1), stopwords=["banjir"])
    assert analyzer("Banjir yang melanda") == ["yang", "melanda"]
    assert len(analyzer.stopwords) == 1


def test_stemming() -> None:
    analyzer = Analyzer(stem=True, ngram_range=(1, 1))
    assert analyzer("pembelajaran") == ["ajar"]
    assert analyzer("menewaskan") == ["tewas"]
    assert analyzer("Gempa menewaskan warga, pembelajaran dihentikan") == ["gempa", "tewas", "warga", "ajar", "henti"]


def test_stemming_drops_stems_that_are_stopwords() -> None:
    # "diadakan" and "bertujuan" are not stopwords, but their stems "ada" and "tuju" are
    assert unigrams("diadakan bertujuan") == ["diadakan", "bertujuan"]
    assert Analyzer(stem=True, ngram_range=(1, 1))("diadakan bertujuan pembelajaran") == ["ajar"]


def test_stem_cache_holds_each_distinct_word_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    built = []
    create = StemmerFactory.create_stemmer
    monkeypatch.setattr(StemmerFactory, "create_stemmer", lambda self: built.append(1) or create(self))
    analyzer = Analyzer(stem=True)
    text = "Pembelajaran menewaskan, pembelajaran menewaskan. Pembelajaran gempa"
    first = analyzer(text)
    assert set(analyzer.stem_cache) == {"pembelajaran", "menewaskan", "gempa"}
    assert analyzer.stem_cache["pembelajaran"] == "ajar"
    assert analyzer(text) == first
    assert analyzer(("Gempa", text)) == ["gempa"] * 3 + first
    assert len(analyzer.stem_cache) == 3
    assert built == [1]  # one stemmer, built on the first word


def test_stem_false_builds_no_stemmer() -> None:
    analyzer = Analyzer()
    analyzer("pembelajaran menewaskan")
    assert dict(analyzer.stem_cache) == {}
    assert not analyzer.stemmer_loaded


@pytest.mark.parametrize("stem", [False, True])
def test_pickle_round_trip(stem: bool) -> None:
    analyzer = Analyzer(stem=stem, ngram_range=(1, 3), title_weight=2, stopwords=["yang", "banjir"])
    doc = ("Pembelajaran Daring", "Gempa menewaskan warga yang tinggal di pesisir, banjir juga.")
    before = analyzer(doc)
    if stem:
        assert analyzer.stem_cache and analyzer.stemmer_loaded
    clone = pickle.loads(pickle.dumps(analyzer))
    assert dict(clone.stem_cache) == {}
    assert not clone.stemmer_loaded
    assert (clone.stem, clone.ngram_range, clone.title_weight, clone.stopwords) == (
        stem,
        (1, 3),
        2,
        frozenset({"yang", "banjir"}),
    )
    assert clone(doc) == before
    assert analyzer(doc) == before  # pickling does not clear the original's cache
    if stem:
        assert len(analyzer.stem_cache) > 0


def test_pickle_size_does_not_grow_with_cache() -> None:
    analyzer = Analyzer(stem=True)
    empty = len(pickle.dumps(analyzer))
    analyzer(" ".join(f"kata{i}" for i in range(50)) + " pembelajaran menewaskan")
    assert len(pickle.dumps(analyzer)) == empty


@pytest.mark.parametrize("ngram_range", [(0, 1), (0, 0), (2, 1), (1, 4), (3, 2), (-1, 2)])
def test_invalid_ngram_range(ngram_range: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="ngram_range"):
        Analyzer(ngram_range=ngram_range)


def test_invalid_title_weight() -> None:
    with pytest.raises(ValueError, match=r"title_weight must be 0 or more, got -1"):
        Analyzer(title_weight=-1)


def test_repr() -> None:
    assert repr(Analyzer(stem=True, ngram_range=(1, 1), title_weight=2, stopwords=["a", "b"])) == (
        "Analyzer(stem=True, ngram_range=(1, 1), title_weight=2, stopwords=<2 words>)"
    )


def test_sample_analysis_is_sane(sample_articles: list[Article]) -> None:
    analyzer = Analyzer()
    snake = next(a for a in sample_articles if a.id == "kompas-8f42b397")
    terms = analyzer((snake.title, snake.body))
    assert "ular" in terms
    for article in sample_articles[:60]:
        for term in analyzer((article.title, article.body)):
            words = term.split(" ")
            assert 1 <= len(words) <= 2
            assert all(w and w == w.lower() and w not in STOP and not w.isdigit() and len(w) > 1 for w in words)


# --- hypothesis ---------------------------------------------------------------------------------

DEBRIS = [
    ",",
    " , ",
    ", ,",
    ";",
    "-",
    " - ",
    "–",
    "—",
    ".",
    ":",
    "\n",
    " ",
    "Baca juga:",
    "baca juga ",
    "Simak juga",
    "loading...",
    "LOADING...",
    "[Gambas:Video 20detik]",
    "[gambas",
    "]",
    "‚Äú",
    "‚Äù",
    "‚Äô",
    "¬†",
    "Ã©",
    "â€œ",
    "é",
    "“",
    "(ab/cd)",
    "(rin/nds)",
    "(mbz)",
    "(KPK)",
    "(X)",
    "(*)",
    "( ,)",
    "(",
    ")",
    "Penulis:",
    "Editor :",
    "KOMPAS.com",
    "TEMPO.CO,",
    "Jakarta",
    "JAKARTA",
    "(ANTARA)",
    "pro-kontra",
    "2019",
    "#GrowFearless with Fimela",
]
capitalised = st.from_regex(r"[A-Z][a-z]{0,7}|[A-Z]{2,5}", fullmatch=True)
lower_words = st.sampled_from(["banjir", "gempa", "yang", "dan", "di", "presiden", "warga", "kata", "b", "10"])
debris_text = st.lists(
    st.one_of(st.sampled_from(DEBRIS), capitalised, lower_words, st.text(max_size=3)), max_size=20
).map(" ".join) | st.lists(st.one_of(st.sampled_from(DEBRIS), capitalised, lower_words), max_size=20).map("".join)
any_text = st.one_of(st.text(), debris_text)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(FAST, max_examples=300)
@given(any_text)
@example("‚Äùloading...é")
@example("Jokowi‚Äôs(rin/nds)“Ia”")
@example("Jakarta - Bogor - Bandung")
@example(", - (ab) (cd) -")
@example("0A‚Äù0A–")
def test_clean_text_idempotent(text: str) -> None:
    once = clean_text(text)
    assert isinstance(once, str)
    assert clean_text(once) == once


@FAST
@given(any_text)
def test_clean_text_output_shape(text: str) -> None:
    once = clean_text(text)
    assert once == once.strip(EDGE)
    assert once == once.strip()
    assert all(c in " \n" for c in once if c.isspace())
    assert not re.search(r"\s\s", once)
    assert len(once) <= len(text) + 2 * text.count("¬") + 8 * sum(not c.isascii() for c in text)


plain_word = st.from_regex(r"[a-z]{2,10}|[A-Z][a-z]{1,9}|[a-z]+-[a-z]+|[0-9]{1,4}", fullmatch=True)
plain_sentence = st.lists(st.tuples(plain_word, st.sampled_from([" ", ", ", ". ", "; "])), min_size=1, max_size=15).map(
    lambda pairs: "".join(w + sep for w, sep in pairs[:-1]) + pairs[-1][0] + "."
)


@FAST
@given(plain_sentence)
def test_clean_text_keeps_ordinary_text(text: str) -> None:
    assert clean_text(text) == text


@FAST
@given(any_text)
def test_analyzer_unigrams_are_clean_tokens(text: str) -> None:
    terms = Analyzer(ngram_range=(1, 1))(text)
    for term in terms:
        assert term
        assert term == term.lower()
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", term), term
        assert term not in STOP
        assert len(term) > 1
        assert not term.isdigit()


@FAST
@given(any_text)
def test_analyzer_ngrams_are_made_of_unigrams(text: str) -> None:
    analyzer = Analyzer(ngram_range=(1, 3))
    terms = analyzer(text)
    unigram_set = {t for t in terms if " " not in t}
    for term in terms:
        words = term.split(" ")
        assert 1 <= len(words) <= 3
        assert set(words) <= unigram_set


@FAST
@given(any_text)
@example("‚Äùbanjir(rin/nds)é gempa")
@example("0A‚Äù0A–")
def test_analyzer_idempotent_on_its_own_cleaning(text: str) -> None:
    analyzer = Analyzer()
    assert analyzer(clean_text(text)) == analyzer(text)


@FAST
@given(any_text, any_text, st.integers(min_value=0, max_value=4))
def test_analyzer_pair_is_weighted_title_plus_body(title: str, body: str, weight: int) -> None:
    analyzer = Analyzer(title_weight=weight)
    terms = analyzer((title, body))
    assert terms == analyzer((title, "")) + analyzer(body)
    assert terms == analyzer((title, clean_text(body)))
    assert analyzer((title, "")) == Analyzer(title_weight=1)((title, "")) * weight


WORDS = ["pembelajaran", "menewaskan", "berada", "dikatakan", "perekonomian", "banjir", "Gempa", "yang", "kebakaran"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([*WORDS, ",", ".", "-", "2019"]), max_size=12).map(" ".join))
def test_stemmed_unigrams_are_clean(text: str) -> None:
    analyzer = Analyzer(stem=True, ngram_range=(1, 1))
    terms = analyzer(text)
    for term in terms:
        assert term and term == term.lower() and term not in STOP
    assert len(analyzer.stem_cache) <= len(set(text.lower().split()))


def reference_terms(text: str, ngram_range: tuple[int, int], *, dateline: bool = True) -> list[str]:
    """The definition the Analyzer's faster code must keep: each segment between sentence breaks is scanned
    for tokens on its own, stopwords, one-letter words and numbers leave, n-grams stay inside the segment."""
    low, high = ngram_range
    out: list[str] = []
    for segment in re.split(r"[.,;:!?\"()\[\]\n\u201c\u201d\u2018\u2019]", clean_text(text, dateline=dateline).lower()):
        words = [w for w in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", segment) if len(w) > 1 and not w.isdigit()]
        words = [w for w in words if w not in STOP]
        for n in range(low, high + 1):
            out.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return out


HYPHENS = ["anak-anak", "pro-kontra", "-", "--", "a-", "-rt", "x--y", "-rt-", "di", "b", "12", ". ", ",", "\n"]
hyphenated_text = st.lists(st.sampled_from(HYPHENS), max_size=25).map(
    lambda parts: "".join(p + " " * (i % 3 == 0) for i, p in enumerate(parts))
)


@FAST
@given(st.one_of(any_text, hyphenated_text), st.sampled_from([(1, 1), (1, 2), (1, 3), (2, 2), (2, 3)]))
@example("a--bc -de fg- --", (1, 2))
@example("-anak-anak-\nb-c--", (1, 2))
def test_analyzer_terms_follow_their_definition(text: str, ngram_range: tuple[int, int]) -> None:
    analyzer = Analyzer(ngram_range=ngram_range)
    assert analyzer.terms(text) == reference_terms(text, ngram_range)
    assert analyzer.terms(text, dateline=False) == reference_terms(text, ngram_range, dateline=False)


PIECES = ["a", "B", " ", "\n", "\t", "\u00a0", "\u3000", "\x85", "é", "“", "‚Äú", "\x01"]


@settings(FAST, max_examples=400)
@given(st.lists(st.sampled_from(PIECES), max_size=20).map("".join))
def test_non_ascii_words_are_those_of_the_plain_pattern_in_squeezed_text(text: str) -> None:
    from recommender.text import _NON_ASCII_WORD, _squeeze

    squeezed = _squeeze(text)
    assert _NON_ASCII_WORD.findall(squeezed) == re.findall(r"\S*[^\x00-\x7f]\S*", squeezed)
