"""The Projects page's "What to label next" in a real browser (one server, the demo data, the demo model):
unlabelled photos uploaded, ranked in a background job, one labelled with a click (it joins the project under
that class and leaves the pool), and the pool and its ranking still there after a reload."""

from __future__ import annotations

import re

from playwright.sync_api import expect  # noqa: E402  (after test_browser, which skips without chromium)
from test_browser import app_page, browser, settle, uploader  # noqa: F401 (browser: a fixture)

from dapt_core.demo import demo_task
from dapt_core.studio.unlabelled_pool import UnlabelledPool
from dapt_core.studio.workspace import Workspace

UNLABELLED = 6
CLASS = "scratch"


def demo_project(workspace: Workspace, per_class: int = 4):
    """A small project of the demo task's photos (the demo project's first `per_class` of each class)."""
    project = workspace.create_project("Demo line", demo_task.CLASSES)
    for name in demo_task.CLASSES:
        project.add_images(name, [(f"train-{i:03d}.png", demo_task.demo_png(0, "train", name, i))
                                  for i in range(per_class)], remember=False)
    return project


def shift_photos(folder, count: int = UNLABELLED):
    """Photos of the same line the project has never seen (another seed), one class after another."""
    folder.mkdir()
    paths = []
    for i in range(count):
        name = demo_task.CLASSES[i % len(demo_task.CLASSES)]
        path = folder / f"shift-{i:02d}.png"
        path.write_bytes(demo_task.demo_png(7, "test", name, i))
        paths.append(path)
    return paths


def test_rank_label_and_reload(browser, tmp_path):  # noqa: F811
    from streamlit_server import Server

    workspace = Workspace(tmp_path / "workspace")
    project = demo_project(workspace)
    good = demo_task.CLASSES[0]  # six more good parts than defects of each kind: uneven, as on a line
    project.add_images(good, [(f"train-{i:03d}.png", demo_task.demo_png(0, "train", good, i)) for i in range(4, 10)])
    photos = shift_photos(tmp_path / "shift")
    server = Server(workspace.root, tmp_path / "server.log").start()
    with app_page(browser, server, f"{server.url}/?project={project.id}", tmp_path) as page:
        page.get_by_text("What to label next", exact=True).click()
        uploader(page, "Add unlabelled photos").set_input_files([str(p) for p in photos])
        expect(page.get_by_text(f"{UNLABELLED} unlabelled photos added.")).to_be_visible()
        assert len(UnlabelledPool(project).photos()) == UNLABELLED
        assert sum(project.counts().values()) == 4 * len(demo_task.CLASSES) + 6  # nothing labelled by an upload
        settle(page)
        page.get_by_role("button", name="Rank photos").click()
        expect(page.get_by_text(re.compile(r"^#1 · shift-\d\d\.png$"))).to_be_visible(timeout=120_000)
        expect(page.get_by_text(re.compile(r"^#6 · "))).to_be_visible()
        # a reason in words for each: typical of an uncovered group (a group of one, here, with few photos)
        reasons = page.get_by_text(re.compile(r"^(typical of a group of \d+ photos no label covers yet|unlike every "
                                              r"other photo here, and nothing labelled looks like it)$"))
        expect(reasons).to_have_count(UNLABELLED)
        # what the ranking was measured to do, and the classes' balance, with the class to label first
        expect(page.get_by_text("Measured on the demo task with the demo model", exact=False)).to_be_visible()
        balance = "Labelled so far: no defect 10 · scratch 4 · crack 4 · dent 4 · stain 4."
        expect(page.get_by_text(balance)).to_be_visible()
        expect(page.get_by_text("'scratch' has the fewest labelled photos (4, against 10", exact=False)).to_be_visible()
        page.get_by_text(re.compile(r"^#1 · ")).scroll_into_view_if_needed()
        settle(page)
        page.screenshot(path=str(tmp_path / "label-next.png"))
        print(f"\nscreenshot of the ranked photos: {tmp_path / 'label-next.png'}")

        first = page.get_by_text(re.compile(r"^#1 · ")).inner_text().split(" · ", 1)[1]
        card = page.get_by_text(re.compile(r"^#1 · ")).locator("xpath=ancestor::div[@data-testid='stVerticalBlock'][1]")
        card.get_by_role("button", name=CLASS, exact=True).click()
        expect(page.get_by_text(f"{first} labelled '{CLASS}'.")).to_be_visible()
        labelled = [r for r in project.images(CLASS) if r.name == first]
        assert len(labelled) == 1, [r.name for r in project.images(CLASS)]
        assert labelled[0].sha256 not in {p.sha256 for p in UnlabelledPool(project).photos()}
        expect(page.get_by_text(f"#1 · {first}", exact=True)).to_have_count(0)

        page.reload()  # a new session: the pool and what is left of its ranking come from the project folder
        expect(page.get_by_text(f"{UNLABELLED - 1} unlabelled photos wait to be labelled.")).to_be_visible(
            timeout=90_000)
        expect(page.get_by_text(re.compile(r"^#2 · "))).to_be_visible()
        expect(page.get_by_text(f"#1 · {first}", exact=True)).to_have_count(0)
        assert len(project.images(CLASS)) == 5
        expect(page.get_by_text("'crack' has the fewest labelled photos (4, against 10", exact=False)).to_be_visible()

