"""The local provider's skills routes at the HTTP level: multipart bodies as sent on the wire.

What the client never sends but another client might (no multipart, stray fields, a part
without a file name, an oversized body), each refused as a 400 in the error envelope with
nothing stored; and the wire shapes themselves.
"""

from __future__ import annotations

import httpx
from support.local_provider import assert_error, new_skill, ok, skill_md

MD = skill_md("tidy-data")


async def test_no_beta_header_is_needed(app: object) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app),  # type: ignore[arg-type]
        base_url="http://local",
        headers={
            "x-api-key": "k",
            "anthropic-version": "2026-10-21",
        },  # as every request needs; no beta
    ) as bare:
        skill = await ok(bare.post("/v1/skills", files=[("files[]", ("a-b/SKILL.md", MD))]))
        assert (await ok(bare.get(f"/v1/skills/{skill['id']}")))["id"] == skill["id"]


async def test_the_upload_must_be_multipart_with_file_parts(http: httpx.AsyncClient) -> None:
    assert_error(await http.post("/v1/skills", json={"files": []}), 400, "invalid_request_error")
    no_files = await http.post("/v1/skills", files=[("display_name", (None, "x"))])
    assert_error(no_files, 400, "invalid_request_error")
    assert "files[] is required" in no_files.json()["error"]["message"]
    as_text = await http.post(
        "/v1/skills", data={"files[]": "tidy-data/SKILL.md"}, files=[("other", ("x", b""))]
    )
    assert_error(as_text, 400, "invalid_request_error")
    stray = await http.post(
        "/v1/skills", files=[("files[]", ("tidy-data/SKILL.md", MD)), ("color", (None, "red"))]
    )
    assert_error(stray, 400, "invalid_request_error")
    assert "'color'" in stray.json()["error"]["message"]
    for name in ("", " ", "two\nlines", "x" * 256):
        bad = await http.post(
            "/v1/skills",
            files=[("files[]", ("tidy-data/SKILL.md", MD)), ("display_name", (None, name))],
        )
        assert_error(bad, 400, "invalid_request_error")
    # over the skill limit (8 MB): the skill route says so; over the API's request limit
    # (32 MB): a 413 before any route reads it
    for length, status, words in (("9999999", 400, "8 MB"), ("99999999", 413, "32 MB")):
        huge = await http.post(
            "/v1/skills",
            content=b"--b--\r\n",
            headers={"content-type": "multipart/form-data; boundary=b", "content-length": length},
        )
        assert_error(huge, status, "invalid_request_error")
        assert words in huge.json()["error"]["message"]
    assert (await ok(http.get("/v1/skills", params={"source": "custom"})))["data"] == []


async def test_plain_files_field_and_a_derived_display_name(http: httpx.AsyncClient) -> None:
    skill = await ok(http.post("/v1/skills", files=[("files", ("tidy-data/SKILL.md", MD))]))
    assert skill["display_name"] == "tidy-data"
    assert set(skill) == {
        "type",
        "id",
        "display_name",
        "source",
        "latest_version_id",
        "created_at",
        "updated_at",
    }


async def test_a_version_upload_takes_no_display_name(http: httpx.AsyncClient) -> None:
    skill = await new_skill(http)
    refused = await http.post(
        f"/v1/skills/{skill['id']}/versions",
        files=[("files[]", ("tidy-data/SKILL.md", MD)), ("display_name", (None, "x"))],
    )
    assert_error(refused, 400, "invalid_request_error")
    versions = await ok(http.get(f"/v1/skills/{skill['id']}/versions"))
    assert len(versions["data"]) == 1


async def test_frontmatter_rules(http: httpx.AsyncClient) -> None:
    cases = {
        b"\xff\xfe not utf-8": "UTF-8",
        b"---\nname: a\n": "closing",
        b"---\n[unclosed\n---\n": "not valid YAML",
        b"---\n- a list\n---\n": "mapping",
        b"---\nname: 7\ndescription: d\n---\n": "name must be a string",
        b"---\ndescription: " + b"d" * 1025 + b"\n---\n": "at most 1024",
        b"---\nname: " + b"a" * 65 + b"\ndescription: d\n---\n": "kebab-case",
        b"---\nname: anthropic-helper\ndescription: d\n---\n": "reserved word",
        b"---\nx: '" + b"y" * 70_000 + b"'\ndescription: d\n---\n": "frontmatter is longer",
    }
    for manifest, words in cases.items():
        r = await http.post("/v1/skills", files=[("files[]", ("tidy-data/SKILL.md", manifest))])
        assert_error(r, 400, "invalid_request_error")
        assert words in r.json()["error"]["message"], (words, r.json())
    folded = b"---\nname: tidy-data\ndescription: >\n  spans\n  lines\n---\n"
    skill = await ok(http.post("/v1/skills", files=[("files[]", ("tidy-data/SKILL.md", folded))]))
    version = await ok(http.get(f"/v1/skills/{skill['id']}/versions/latest"))
    assert version["description"] == "spans lines"


async def test_missing_things_are_404s(http: httpx.AsyncClient) -> None:
    skill = await new_skill(http)
    base = f"/v1/skills/{skill['id']}/versions"
    for r in (
        await http.get("/v1/skills/skill_01none"),
        await http.delete("/v1/skills/skill_01none"),
        await http.get("/v1/skills/skill_01none/versions"),
        await http.get(f"{base}/skillver_01none"),
        await http.delete(f"{base}/skillver_01none"),
        await http.get(f"{base}/skillver_01none/content"),
    ):
        assert_error(r, 404, "not_found_error")
    assert_error(await http.delete(f"{base}/latest"), 400, "invalid_request_error")
    r = await http.get(f"{base}/latest/content")
    assert r.headers["content-disposition"] == 'attachment; filename="tidy-data.zip"'
