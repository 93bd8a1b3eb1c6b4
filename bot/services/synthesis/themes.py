"""Themes in what the small groups wrote, with classical methods: TF-IDF of word stems
(Snowball stemmers; accents folded, each language's common words left out, words used
once dropped), reduced by LSA (truncated SVD), k-means on the normalised vectors with the
number of themes chosen by silhouette, and for each theme its size, its
words, the tables and quota categories that raised it, and the quotes nearest its centre.

Pure: texts in, themes out. Where the texts come from is `contributions.py`. The number
of themes is never taken from a labelled set: `agreement` only measures the result.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import snowballstemmer
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

SEED = 0
MAX_THEMES = 10
DIMENSIONS = 20  # LSA: what short texts share shows up beyond their exact words
WORD = re.compile(r"[^\W\d_]{3,}")
STEMMERS = {"en": "english", "fr": "french", "es": "spanish"}
QUOTES = 3
TERMS = 5

# Common words with no theme of their own, accents folded as the vectoriser folds them.
FRENCH = """a au aux avec ce ces cet cette dans de des du elle elles en est et etre il ils
je la le les leur leurs lui mais me meme mes moi mon ne nos notre nous on ou par pas pour
plus qu que qui sa se ses son sont sur ta te tes toi ton tu un une vos votre vous y c d j l
m n s t qu il faut faudrait fait faire tres trop bien peu aussi sans comme tout tous toutes
ont avons avez ai as sommes etes ete sera serait ca cela ceci quand donc alors si chez
encore deja apres avant entre vers souvent toujours jamais rien beaucoup autres autre""".split()
SPANISH = """a al con de del el ella en es esta estan hay la las lo los mas me mi muy no nos
o para pero por que se si sin su sus un una uno y ya yo tu te le les como todo todos hay
hacer hace tiene tienen ser son fue era mucho muchos poco tambien cuando donde""".split()
STOP = {"en": set(ENGLISH_STOP_WORDS), "fr": set(FRENCH), "es": set(SPANISH)}


@dataclass
class Text:
    """One contribution: who (pseudonym), where (table), and what they wrote."""

    id: int
    author: str
    text: str
    table: int | None = None
    categories: dict[str, str] = field(default_factory=dict)  # quota feature -> value


@dataclass
class Theme:
    id: int
    size: int
    terms: list[str]
    tables: dict[int, int]  # table -> contributions
    categories: dict[str, dict[str, int]]  # feature -> value -> contributions
    quotes: list[tuple[str, str]]  # (pseudonym, text), nearest the centre first
    members: list[int] = field(default_factory=list)  # Text ids


@dataclass
class Themes:
    prompt: str
    language: str
    texts: int
    silhouette: float | None
    themes: list[Theme]
    labels: list[int]  # theme of each text, in the order given


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if not unicodedata.combining(c))


def analyser(language: str):
    """A text's stems, common words left out ('Buses', 'bus' -> 'bus')."""
    stemmer = snowballstemmer.stemmer(STEMMERS.get(language, "english"))
    stop = STOP.get(language, set())
    names: dict[str, str] = {}  # a stem -> the first word seen for it, to show

    def stems(text: str) -> list[str]:
        words = [w for w in WORD.findall(_fold(text)) if w not in stop]
        out = stemmer.stemWords(words)
        for word, stem in zip(words, out, strict=True):
            names.setdefault(stem, word)
        return out

    return stems, names


def vectorise(texts: list[str], language: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Unit vectors for clustering (LSA), and the TF-IDF with its words for showing."""
    stems, names = analyser(language)
    vectoriser = TfidfVectorizer(
        analyzer=stems, min_df=2 if len(texts) >= 20 else 1, sublinear_tf=True
    )
    tfidf = vectoriser.fit_transform(texts)
    words = [names.get(stem, stem) for stem in vectoriser.get_feature_names_out()]
    dims = min(DIMENSIONS, tfidf.shape[1] - 1, len(texts) - 1)
    reduced = (
        TruncatedSVD(dims, random_state=SEED).fit_transform(tfidf) if dims >= 2 else tfidf.toarray()
    )
    norms = np.linalg.norm(reduced, axis=1, keepdims=True)
    return reduced / np.where(norms == 0, 1, norms), tfidf.toarray(), words


def choose(vectors: np.ndarray, max_themes: int) -> tuple[np.ndarray, float | None]:
    """k-means for k = 2..max_themes on unit vectors; the best silhouette (cosine)."""
    best: tuple[float, np.ndarray] | None = None
    top = min(max_themes, len(vectors) - 1)
    for k in range(2, top + 1):
        labels = KMeans(n_clusters=k, n_init=4, random_state=SEED).fit_predict(vectors)
        if len(set(labels)) < 2:
            continue
        score = float(silhouette_score(vectors, labels, metric="cosine"))
        if best is None or score > best[0]:
            best = (score, labels)
    if best is None:
        return np.zeros(len(vectors), dtype=int), None
    return best[1], best[0]


def find(
    texts: list[Text],
    *,
    prompt: str = "",
    language: str = "en",
    max_themes: int = MAX_THEMES,
    themes: int | None = None,
) -> Themes:
    """The themes of one prompt's contributions in one language (`themes`: a fixed number
    instead of the silhouette's choice)."""
    if len(texts) < 3:
        raise ValueError(f"{prompt or 'these texts'} ({language}): {len(texts)} texts, too few")
    vectors, tfidf, words = vectorise([t.text for t in texts], language)
    if themes:
        labels = KMeans(n_clusters=themes, n_init=4, random_state=SEED).fit_predict(vectors)
        silhouette = float(silhouette_score(vectors, labels, metric="cosine"))
    else:
        labels, silhouette = choose(vectors, max_themes)
    order = sorted(set(labels), key=lambda g: (-(labels == g).sum(), g))
    found = [_theme(n, texts, vectors, tfidf, words, labels == g) for n, g in enumerate(order)]
    rename = {g: n for n, g in enumerate(order)}
    return Themes(prompt, language, len(texts), silhouette, found, [rename[g] for g in labels])


def _theme(number: int, texts, vectors, tfidf, words, inside: np.ndarray) -> Theme:
    members = [t for t, keep in zip(texts, inside, strict=True) if keep]
    weight = tfidf[inside].mean(axis=0)
    terms = [words[i] for i in np.argsort(-weight)[:TERMS] if weight[i] > 0]
    nearest = np.argsort(-(vectors[inside] @ vectors[inside].mean(axis=0)))[:QUOTES]
    categories: dict[str, Counter] = {}
    for t in members:
        for feature, value in t.categories.items():
            categories.setdefault(feature, Counter())[value] += 1
    return Theme(
        id=number,
        size=len(members),
        terms=terms,
        tables=dict(sorted(Counter(t.table for t in members if t.table is not None).items())),
        categories={f: dict(c.most_common()) for f, c in sorted(categories.items())},
        quotes=[(members[i].author, members[i].text) for i in nearest],
        members=[t.id for t in members],
    )


@dataclass
class Agreement:
    texts: int
    labels: int  # distinct labels in the set
    themes: int  # themes found
    ari: float
    nmi: float


def agreement(found: Themes, labels: list[str]) -> Agreement:
    """How close the themes come to a labelled set (same texts, same order)."""
    return Agreement(
        texts=len(labels),
        labels=len(set(labels)),
        themes=len(found.themes),
        ari=float(adjusted_rand_score(labels, found.labels)),
        nmi=float(normalized_mutual_info_score(labels, found.labels)),
    )
