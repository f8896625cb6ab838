"""The learned layer (analyzer/learned.py): objections said in words no phrase list has are found and
explained by their words; an answer that only looks like one is not handling; what reviewers decide
changes what the script's model finds; the packaged corpus and models are those the sources give;
scoring's own arithmetic gives scikit-learn's probabilities."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from analyzer import Transcript, score_transcript
from analyzer.errors import ScriptValidationError
from analyzer.learned import (
    MODELS_DIR,
    TRAINING_SETS,
    ObjectionModel,
    corpus,
    features,
    fit_linear,
    objection_model,
    recognised_dialogue,
    training_key,
)
from analyzer.normalization import get_normalizer
from analyzer.scripts import BUNDLED_DIR, default_script, load_script, parse_script
from analyzer.thresholds import DEFAULT
from sample_calls.learn import build_corpus

M, C = "manager", "client"
HELLO = (M, "Добрый день! Меня зовут Ольга, компания Вектор. Вам удобно говорить?")


def report(turns, language="ru", script=None, **kwargs):
    tr = Transcript.from_dict({"language": language, "turns": [{"speaker": s, "text": t} for s, t in turns]})
    return score_transcript(tr, script or default_script(language), **kwargs)


@pytest.mark.parametrize(("language", "said", "kind"), [
    ("ru", "Ого, это ползарплаты моего водителя.", "price"),
    ("ru", "У нас этим занимается управляющая компания бизнес-центра.", "have_supplier"),
    ("en", "Honestly, our accountant's cousin does all of that for us.", "have_supplier"),
    ("en", "The money for this year is already spoken for, to be honest.", "no_budget"),
    ("en", "That's a bit rich for us, mate.", "price"),
])
def test_an_objection_in_words_no_phrase_list_has_is_found_and_explained(language, said, kind):
    pitch = (M, "Мы возим грузы по всей России, быстро и надёжно." if language == "ru" else "We handle payroll end to end.")
    without = report([pitch, (C, said)], language, thresholds=dataclasses.replace(DEFAULT, learned=False))
    assert kind not in [o.type for o in without.objections]  # the phrase list alone misses it
    found = [o for o in report([pitch, (C, said)], language).objections if o.type == kind]
    assert len(found) == 1
    words = found[0].client.phrase.split()
    assert words and all(w.lower() in said.lower() for w in words)  # the explanation names the client's words
    assert "learned model" in found[0].note


def test_an_objection_negated_is_no_objection():
    assert report([(C, "It isn't too expensive, honestly.")], "en").objections == ()
    assert report([(C, "Не, ну это недорого для нас.")]).objections == ()


def test_arguing_past_an_objection_is_not_handling_it():
    turns = [HELLO, (C, "Да."), (M, "Мы возим грузы по всей России."), (C, "Слушайте, дороговато у вас выходит."),
             (M, "У нас собственный автопарк из двухсот машин и склады в пяти городах, так что всё привезём вовремя.")]
    assert next(o for o in report(turns).objections if o.type == "price").handled is False
    turns[-1] = (M, "Понимаю вас. А с чем сравниваете, если не секрет?")
    assert next(o for o in report(turns).objections if o.type == "price").handled is True


def test_what_reviewers_decide_changes_what_the_script_finds():
    base = load_script(BUNDLED_DIR / "ru_b2b_outbound.yaml")
    said = "Это надо через Зелёный контур, у нас так заведено."  # a company's word for its procurement portal
    before = report([(M, "Давайте я пришлю вам предложение?"), (C, said)], script=base)
    assert "not_decision_maker" not in [o.type for o in before.objections]  # nothing, or read as another type
    data = yaml.safe_load((BUNDLED_DIR / "ru_b2b_outbound.yaml").read_text(encoding="utf-8"))
    data["version"] = "1.0-learned"
    data["examples"] = [{"text": t, "label": "not_decision_maker"} for t in (
        "Мы только через Зелёный контур, напрямую никак.", "Закупаем через Зелёный контур, решаю не я.",
        "У нас всё через Зелёный контур, это комиссия решает.")]
    learned = parse_script(data)
    assert training_key(learned, corpus()) != training_key(base, corpus())
    after = report([(M, "Давайте я пришлю вам предложение?"), (C, said)], script=learned)
    assert [o.type for o in after.objections] == ["not_decision_maker"]


def test_examples_must_name_the_scripts_objection_types():
    data = yaml.safe_load((BUNDLED_DIR / "ru_b2b_outbound.yaml").read_text(encoding="utf-8"))
    data["examples"] = [{"text": "Дорого.", "label": "too_pricey"}]
    with pytest.raises(ScriptValidationError, match="too_pricey"):
        parse_script(data)


def test_a_model_keeps_its_probabilities_through_bytes():
    script = default_script("en")
    model = objection_model(script)
    again = ObjectionModel.from_bytes(model.to_bytes())
    tokens = get_normalizer("en").tokens("We already work with a local firm, they do all our printing.")
    assert again.detect(tokens) == pytest.approx(model.detect(tokens))
    assert again.handled("price", tokens) == pytest.approx(model.handled("price", tokens))


@pytest.mark.slow  # trains scikit-learn's model to compare
def test_scoring_arithmetic_gives_scikit_learns_probabilities():
    norm = get_normalizer("ru")
    rows = [(u.text, u.label) for u in corpus().utterances if u.language == "ru"][:800]
    samples = [features(norm.tokens(t))[:2] for t, _ in rows]
    model = fit_linear(samples, [y for _, y in rows], c=30.0)
    def tokens_as_they_are(tokens: list[str]) -> list[str]:  # the features are token lists already
        return tokens

    vw = TfidfVectorizer(analyzer=tokens_as_they_are, sublinear_tf=True)
    vc = TfidfVectorizer(analyzer=tokens_as_they_are, sublinear_tf=True, min_df=2)
    x = hstack([vw.fit_transform([s[0] for s in samples]), vc.fit_transform([s[1] for s in samples])]).tocsr()
    lr = LogisticRegression(C=30.0, max_iter=5000).fit(x, [y for _, y in rows])
    assert tuple(lr.classes_) == model.classes
    probe = ["Это для нас дороговато, честно говоря.", "Давайте в пятницу в десять.", "У нас уже есть поставщик, всё устраивает.",
             "Неа."]
    tokens = [norm.tokens(t) for t in probe]
    expected = lr.predict_proba(hstack([vw.transform([features(t)[0] for t in tokens]),
                                        vc.transform([features(t)[1] for t in tokens])]).tocsr())
    assert np.array([model.token_probabilities(t) for t in tokens]) == pytest.approx(expected, abs=1e-6)
    assert np.array([model.probabilities(*features(t)[:2]) for t in tokens]) == pytest.approx(expected, abs=1e-6)


def test_the_packaged_corpus_is_what_the_labelled_sets_give():
    assert build_corpus().digest == corpus().digest, "run: python -m sample_calls.learn build"
    assert not {"blind1", "blind2"} & set(TRAINING_SETS)  # never a blind set


def test_every_training_dialogue_and_bank_entry_is_labelled_as_the_format_says():
    """A label on a manager's turn or past the end would teach the models the wrong words."""
    from sample_calls import learn

    found = [p for folder in TRAINING_SETS for f in sorted((learn.HERE / folder).glob("*.yaml"))
             for p in learn.problems(yaml.safe_load(f.read_text(encoding="utf-8")), f.stem)]
    assert found == []
    assert learn.bank_problems() == []
    assert learn.problems({"id": "x", "language": "ru", "turns": [{"speaker": "manager", "text": "Добрый день."},
                                                                 {"speaker": "client", "text": "Дорого."}],
                           "labels": {"objections": [{"type": "price", "turn": 0, "handled": False}]}}, "x")


def test_the_bundled_scripts_models_are_packaged():
    for path in sorted(BUNDLED_DIR.glob("*.yaml")):
        script = load_script(path)
        assert (MODELS_DIR / f"{training_key(script, corpus())}.npz").is_file(), "run: python -m sample_calls.learn build"


def test_a_dialogue_as_the_recogniser_heard_it_keeps_its_labels_on_the_right_turns():
    dialogue = {"id": "x", "language": "ru", "turns": [
        {"speaker": M, "text": "Добрый день, это Ольга, компания Вектор."},
        {"speaker": C, "text": "Да. Слушайте, это кусается, мы столько не потянем."},
        {"speaker": M, "text": "Понимаю. А с чем сравниваете?"},
        {"speaker": C, "text": "Угу."},
        {"speaker": C, "text": "И вообще, у нас свой поставщик."},
    ], "labels": {"stages": ["greeting"], "objections": [
        {"type": "price", "turn": 1, "handled": True, "response_turn": 2},
        {"type": "have_supplier", "turn": 4, "handled": False}]}}
    times = [{"index": i, "start": a, "end": b} for i, (a, b) in enumerate([(0, 3), (3.5, 7), (7.5, 9), (9.5, 10), (10.5, 13)])]
    heard = {"language": "ru", "turns": [
        {"speaker": M, "start": 0.1, "end": 2.9, "text": "Добрый день, это Ольга, компания Вектор."},
        {"speaker": C, "start": 3.6, "end": 5.0, "text": "Да, слушайте, это кусается."},  # one turn heard in two
        {"speaker": C, "start": 5.2, "end": 6.9, "text": "Мы столько не потянем."},
        {"speaker": M, "start": 7.6, "end": 8.9, "text": "Понимаю, а с чем сравниваете?"},
        {"speaker": C, "start": 10.6, "end": 12.8, "text": "И вообще у нас свой поставщик."},  # "угу" lost
    ]}
    d = recognised_dialogue(dialogue, heard, times)
    assert [t["text"] for t in d["turns"]] == ["Добрый день, это Ольга, компания Вектор.",
                                               "Да, слушайте, это кусается. Мы столько не потянем.",
                                               "Понимаю, а с чем сравниваете?", "И вообще у нас свой поставщик."]
    assert d["labels"]["objections"] == [{"type": "price", "turn": 1, "handled": True, "response_turn": 2},
                                         {"type": "have_supplier", "turn": 3, "handled": False}]
    assert d["labels"]["stages"] == ["greeting"]
