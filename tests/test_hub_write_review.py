"""The Hub write review on an approval card: a snapshot of what the user sees before a README
upload to a public repo, and Pilot checks of what the card says and colours."""

from __future__ import annotations

from agent.hub_provenance import with_provenance
from agent.protocol import ApprovalItem, ApprovalRequired, HubWriteFile, HubWriteReview
from agent.tools.hub_plan import card_diff
from tests.test_tui_snapshots import SIZE, ready, turn
from tests.tui_support import AppUnderTest, approval_screen, feed, wait_for
from widgets.hub_write_review import HubWriteReviewView, diff_content, file_table

OLD = "# tiny-gpt\n\nTrained for 3 epochs.\n"
NEW = with_provenance(OLD.replace("3 epochs", "5 epochs, perplexity 9.8"))

README_UPLOAD = ApprovalItem(
    tool_call_id="up1", tool="hf_repo_files",
    arguments={"operation": "upload", "repo_id": "ada/tiny-gpt", "path": "README.md", "content": NEW,
               "commit_message": "Update card with eval"},
    reason="hf_repo_files upload uploads files to the Hub repo ada/tiny-gpt",
    review=HubWriteReview(
        repo_id="ada/tiny-gpt", repo_type="model", operation="upload", visibility="public", revision="main",
        files=[HubWriteFile(path="README.md", change="update", size=len(NEW.encode()), source="content")],
        total_bytes=len(NEW.encode()), card_diff=card_diff(OLD, NEW)),
)

FOLDER_UPLOAD = ApprovalItem(
    tool_call_id="up2", tool="hf_repo_files",
    arguments={"operation": "upload", "repo_id": "ml-team/evals", "repo_type": "dataset", "local_path": "out",
               "create_pr": True},
    reason="hf_repo_files upload uploads files to the Hub repo ml-team/evals",
    review=HubWriteReview(
        repo_id="ml-team/evals", repo_type="dataset", operation="upload", visibility="private", create_pr=True,
        files=[HubWriteFile(path="data/train.jsonl", change="add", size=48_213_004, source="out/data/train.jsonl"),
               HubWriteFile(path="data/test.jsonl", change="update", size=1_204, source="out/data/test.jsonl")],
        total_bytes=48_214_208, notes=["…and 12 more files (3.1 MB) not listed here."]),
)


def test_snapshot_readme_upload_to_a_public_repo(snap_compare):
    """The approval modal for an hf_repo_files upload of README.md: the target line "upload → model
    ada/tiny-gpt · on main", "⚠ public — anyone can see what this writes" in the warning colour, a
    Files table with "update README.md", its size and the total, then the model card diff: the new
    front matter with the mlintern tag, "+Trained for 5 epochs, perplexity 9.8" and the provenance
    line in green, "-Trained for 3 epochs." in red. The raw arguments follow below (scrolled), and
    the key line (y approve · n reject …) stays visible under the card."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Update the model card with the eval results")
        await feed(app, *turn(""), ApprovalRequired(items=[README_UPLOAD]))
        await pilot.pause(0.2)

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


async def test_the_card_shows_the_review_of_each_item():
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        app.approval_grace_s = 0.0
        await feed(app, ready())
        await feed(app, *turn(""), ApprovalRequired(items=[README_UPLOAD, FOLDER_UPLOAD]))
        await wait_for(pilot, lambda: (s := approval_screen(app)) is not None and bool(s.query(HubWriteReviewView)),
                       what="the approval card")
        view = approval_screen(app).query_one(HubWriteReviewView)
        assert view.review.repo_id == "ada/tiny-gpt"
        visibility = view.query_one(".review-visibility")
        assert visibility.has_class("-public") and "public" in str(visibility.render())
        diff = str(view.query_one(".review-diff").render())
        assert "-Trained for 3 epochs." in diff and "+Trained for 5 epochs, perplexity 9.8." in diff
        await pilot.press("y")
        await wait_for(pilot, lambda: (s := approval_screen(app)) is not None and s.item.tool_call_id == "up2"
                       and bool(s.query(HubWriteReviewView)), what="the second card")
        second = approval_screen(app).query_one(HubWriteReviewView)
        text = str(second.query_one(".review-target").render())
        assert "dataset ml-team/evals" in text and "opens a pull request" in text
        assert not second.query_one(".review-visibility").has_class("-public")
        assert "12 more files" in str(second.query_one(".review-notes").render())
        assert not second.query(".review-diff")


def test_diff_and_table_styles_come_from_the_theme():
    diff = diff_content("--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-old\n+new\n same")
    styles = {str(span.style) for span in diff.spans}
    assert "$success" in styles and "$error" in styles and not any("#" in s for s in styles)
    table = file_table(FOLDER_UPLOAD.review)
    assert "48.2 MB" in table.plain and "data/train.jsonl" in table.plain and "2 files listed" in table.plain
    long = diff_content("\n".join(f"+line {i}" for i in range(100)))
    assert "40 more diff lines" in long.plain
