"""Pass or fail in the app: the good class of a project, the numbers each page leads with, the verdict
of a tried photo, and the report."""

from __future__ import annotations

from test_app import make_project, new_app, no_exception, texts, tune, workspace  # noqa: F401  (fixture)

from ui import nav


def test_the_good_class_is_guessed_then_confirmed_or_changed(workspace, tmp_path):  # noqa: F811
    project = make_project(workspace, tmp_path, per_class=3)
    project.rename_class("blue", "no defect")
    assert project.good_class == "no defect" and not project.good_class_confirmed
    at = new_app()
    at.run()
    no_exception(at)
    picker = at.selectbox(key=f"good-class-{project.id}-no defect")
    assert picker.value == "no defect"
    assert any("Guessed from the class names" in c.value for c in at.caption)
    picker.set_value("red")
    at.run()
    no_exception(at)
    assert project.good_class == "red" and project.good_class_confirmed
    project.rename_class("red", "OK parts")  # a rename carries the choice along
    assert project.good_class == "OK parts"
    project.set_good_class(None)  # "none": a task without a pass/fail decision
    assert project.good_class is None and project.good_class_confirmed


def test_a_run_leads_with_escapes_and_overkill_everywhere(workspace, tmp_path):  # noqa: F811
    project = make_project(workspace, tmp_path, per_class=12)  # 27 test photos: 9 good, 18 defective
    project.rename_class("blue", "no defect")
    at = new_app()
    at.switch_page(nav.TUNE.path)
    at.run()
    # 18 defective test photos can promise no escape rate under 1/19; 10 % they can
    at.number_input(key="tune-escape-rate").set_value(10.0)
    at.run()
    snap = tune(at, project.id)
    no_exception(at)
    card = " ".join(texts(at, "success") + texts(at, "warning"))
    assert "defective parts would pass as 'no defect'" in card and "Run saved" in card
    point = snap.result["calibration"]["pass_fail"]
    assert point["escape_rate"] == 0.1 and point["held_out_defective"] == 18

    at.switch_page(nav.INSPECT.path)
    at.run()
    no_exception(at)
    assert "Pass or fail" in [s.value for s in at.subheader]
    labels = [m.label for m in at.metric]
    assert labels[:2] == ["Escapes", "Overkill"]
    table = at.dataframe[0].value  # the first table: pass or fail
    assert list(table.iloc[:2, 0]) == ["Escapes: defective parts called 'no defect'",
                                       "Overkill: 'no defect' parts called defective"]
    assert any("Fewer escapes cost more good parts" in chart.proto.spec for chart in at.get("plotly_chart"))

    [info] = project.runs()
    run = project.run(info.id)
    at.switch_page(nav.EXPORT.path)
    at.run()
    no_exception(at)
    photos = [(row["name"], run.test_image_path(row).read_bytes(), "image/png") for row in run.data["test"][::5]]
    at.file_uploader(key=f"try-{info.id}").set_value(photos)
    at.run()
    no_exception(at)
    tried = at.dataframe[0].value
    assert set(tried["Verdict"]) <= {"PASS", "FAIL"} and len(tried) == len(photos)

    from ui.report_builder import build_report
    from ui.run_view import load_view

    html = build_report(load_view(run), project.name, lang="en")
    assert html.index("Pass or fail") < html.index("Intra-dispersion")  # what the line decides comes first
    assert "合否判定" in build_report(load_view(run), project.name, lang="ja")


def test_a_replaced_or_useless_run_is_said_first_in_both_languages():
    from ui.narrative import manager_sentence

    metrics = {"accuracy": 0.333, "zero_shot_accuracy": 0.333, "n_test": 600, "chance": 1 / 3,
               "per_class": {}, "zero_shot_per_class": {},
               "safeguard": {"action": "zero_shot", "requested_method": "dapt", "method": "zeroshot",
                             "runs": [{"method": "dapt", "outcome": "collapsed_early"},
                                      {"method": "coop", "outcome": "collapsed"},
                                      {"method": "zeroshot", "outcome": "kept"}]},
               "health": {"status": "at_chance", "findings": [], "advice": []}}
    english = manager_sentence({"metrics": metrics, "shots": 16}, lang="en")
    assert english.startswith("Tuning collapsed (tried: DAPT, CoOp)")
    assert "no better than guessing" in english
    japanese = manager_sentence({"metrics": metrics, "shots": 16}, lang="ja")
    assert japanese.startswith("調整が崩壊しました") and "。 " not in japanese
