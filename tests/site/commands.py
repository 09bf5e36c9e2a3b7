"""The commands the site's pages show, read back from the Markdown, and run.

Every request a page shows is one group of three tabs (pymdownx.tabbed), optionally
followed by the answer it gets, its status in the title::

    === "curl"

        ```bash
        curl -s -X POST http://127.0.0.1:8000/predict_batch \
            -H 'Content-Type: application/json' -d '[]'
        ```

    === "Python (requests)"

        ```python
        import requests

        response = requests.post("http://127.0.0.1:8000/predict_batch", json=[])
        print(response.status_code, response.json())
        ```

    === "PowerShell"

        ```powershell
        Invoke-RestMethod -Method Post -Uri 'http://127.0.0.1:8000/predict_batch' `
            -ContentType 'application/json' -Body '[]'
        ```

    ```json title="status 422"
    {"detail": [...]}
    ```

(The curl and PowerShell commands are one line each on a page; they are cut here.)

- ``curl``: one line, ``curl -s [-X METHOD] URL [-H 'Name: value'] [-d 'data']``,
  optionally ``| grep [-E] 'pattern'``; answers of a grep are ``text`` blocks.
- ``Python (requests)``: ``requests.get``, ``requests.post`` or ``requests.request`` with
  ``params`` (the query) and ``json`` (the body), or ``data`` and a ``Content-Type``
  header; it leaves the answer in ``response``, and when the curl greps, it prints the
  lines it keeps (``re.search`` or ``line.startswith``) and what it prints is the answer.
  The suite runs it against a recorder to check that it sends what the curl sends, and
  against the lesson to check the answer.
- ``PowerShell``: ``Invoke-RestMethod`` with ``-Method`` (or ``-CustomMethod`` for a method
  PowerShell does not know), ``-Uri``, ``-ContentType`` and ``-Body``, each value in single
  quotes; a grep becomes ``(Invoke-RestMethod -Uri '...') -split "`n" | Select-String
  -Pattern '...'``. PowerShell does not run here: the suite checks that it sends what the
  curl sends (method, URL, content type, body) and greps for the same pattern.

A page's commands run against a lesson: a lesson page's against its own lesson, any other
page's against the final lesson, unless the page names one in a comment,
``<!-- commands run against: <lesson> -->``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.lessons import FINAL_LESSON, LESSONS

PAGE_URL = "http://127.0.0.1:8000"
TAB_TITLES = ("curl", "Python (requests)", "PowerShell")

GROUP = re.compile(
    r'^=== "curl"\n\n    ```bash\n    (?P<curl>curl [^\n]*)\n    ```\n\n'
    r'=== "Python \(requests\)"\n\n    ```python\n(?P<python>.*?)\n    ```\n\n'
    r'=== "PowerShell"\n\n    ```powershell\n    (?P<powershell>[^\n]*)\n    ```\n'
    r'(?:\n```(?P<kind>json|text) title="status (?P<status>\d{3})"\n(?P<answer>.*?)```)?',
    re.MULTILINE | re.DOTALL,
)
# A code line that calls curl, wherever it is (a page's prose may mention `curl -X BREW`).
CURL_LINE = re.compile(r"^[ ]*(?:\$ )?curl .*$", re.MULTILINE)
RUNS_AGAINST = re.compile(r"<!-- commands run against: (\w+) -->")


@dataclass(frozen=True)
class Request:
    """What a command sends."""

    method: str
    url: str
    content_type: str | None = None
    body: str | None = None
    grep: str | None = None


@dataclass(frozen=True)
class Command:
    """One group of tabs of a page and, when the page shows one, the answer it promises."""

    curl: str
    python: str
    powershell: str
    status: int | None = None
    kind: str | None = None
    answer: str | None = None


def commands_on(markdown: str) -> list[Command]:
    return [
        Command(
            match["curl"],
            "\n".join(line.removeprefix("    ") for line in match["python"].splitlines()),
            match["powershell"],
            int(match["status"]) if match["status"] else None,
            match["kind"],
            match["answer"],
        )
        for match in GROUP.finditer(markdown)
    ]


def curls_without_variants(markdown: str) -> list[str]:
    """curl lines of a page's code blocks that are not the "curl" tab of a group."""
    in_groups = {match["curl"] for match in GROUP.finditer(markdown)}
    outside = GROUP.sub("", markdown)
    code = "".join(re.findall(r"^[ ]*```[^\n]*\n(.*?)^[ ]*```", outside, re.MULTILINE | re.DOTALL))
    return [line.strip() for line in CURL_LINE.findall(code) if line.strip() not in in_groups]


def lesson_of(page: Path, markdown: str) -> str:
    """The lesson a page's commands run against."""
    named = RUNS_AGAINST.search(markdown)
    if named:
        return named[1]
    return page.stem if page.stem in LESSONS else FINAL_LESSON


# ------------------------------------------------------------------ reading the variants


def curl_request(command: str) -> Request:
    """What ``curl -s [-X M] URL [-H h] [-d data] [| grep [-E] pattern]`` sends."""
    command, _, grep = command.partition(" | grep ")
    words = shlex.split(command)[1:]
    method, content_type, data, url = None, None, None, None
    while words:
        word = words.pop(0)
        if word == "-s":
            continue
        if word == "-X":
            method = words.pop(0)
        elif word == "-H":
            key, _, value = words.pop(0).partition(": ")
            assert key.lower() == "content-type", f"curl header not understood: {key}"
            content_type = value
        elif word == "-d":
            data = words.pop(0)
        else:
            assert url is None and word.startswith(PAGE_URL), f"curl option not understood: {word}"
            url = word
    assert url is not None, command
    return Request(
        method or ("POST" if data is not None else "GET"),
        url,
        content_type,
        data,
        shlex.split(grep)[-1] if grep else None,
    )


POWERSHELL_PARAMETER = re.compile(r"-(\w+) (?:'((?:[^']|'')*)'|(\w+))")


def powershell_request(command: str) -> Request:
    """What ``Invoke-RestMethod -Method M -Uri '...' [-ContentType '...'] [-Body '...']`` sends."""
    grep = None
    match = re.fullmatch(
        r"\((Invoke-RestMethod [^)]*)\) -split \"`n\" \| Select-String -Pattern '([^']*)'", command
    )
    if match:
        command, grep = match[1], match[2]
    assert command.startswith("Invoke-RestMethod "), f"not an Invoke-RestMethod: {command}"
    rest = command.removeprefix("Invoke-RestMethod ")
    parameters: dict[str, str] = {}
    for found in POWERSHELL_PARAMETER.finditer(rest):
        value = found[3] if found[3] is not None else found[2].replace("''", "'")
        parameters[found[1]] = value
    leftover = POWERSHELL_PARAMETER.sub("", rest).strip()
    assert leftover == "", f"PowerShell parameters not understood: {leftover}"
    known = {"Method", "CustomMethod", "Uri", "ContentType", "Body"}
    assert set(parameters) <= known, f"PowerShell parameters not understood: {set(parameters)}"
    method = parameters.get("CustomMethod") or parameters.get("Method", "Get")
    return Request(
        method.upper(),
        parameters["Uri"],
        parameters.get("ContentType"),
        parameters.get("Body"),
        grep,
    )


def same_request(curl: Request, other: Request) -> bool:
    """Same method, URL, content type, pattern and body (JSON bodies compared as JSON)."""
    if (curl.method, curl.url, curl.content_type, curl.grep) != (
        other.method,
        other.url,
        other.content_type,
        other.grep,
    ):
        return False
    if curl.body is None or other.body is None or curl.content_type != "application/json":
        return curl.body == other.body
    return bool(json.loads(curl.body) == json.loads(other.body))


# ------------------------------------------------------------------ running them


def grep(text: str, pattern: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if re.search(pattern, line))


def run_curl(command: str, base_url: str) -> tuple[int, str]:
    """Do what the curl command does, in Python, against ``base_url`` instead of port 8000."""
    request = curl_request(command)
    url = base_url + request.url.removeprefix(PAGE_URL)
    headers = {"Content-Type": request.content_type} if request.content_type else {}
    data = request.body.encode() if request.body is not None else None
    sent = urllib.request.Request(url, data=data, headers=headers, method=request.method)
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read().decode()
    return status, grep(body, request.grep) if request.grep else body


def run_python(command: Command, base_url: str) -> tuple[int, str]:
    """Run a "Python (requests)" tab against ``base_url``: the status of its ``response``,
    and what it printed when the curl greps, else the response's text."""
    namespace: dict[str, Any] = {}
    printed = io.StringIO()
    code = compile(command.python.replace(PAGE_URL, base_url), "<page>", "exec")
    with contextlib.redirect_stdout(printed):
        exec(code, namespace)
    response = namespace["response"]
    greps = curl_request(command.curl).grep is not None
    return response.status_code, printed.getvalue() if greps else response.text


class RecordingRequests:
    """Stands in for the ``requests`` module: records the one request a snippet sends."""

    def __init__(self) -> None:
        self.sent: list[Request] = []

    def get(self, url: str, **options: Any) -> Any:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> Any:
        return self.request("POST", url, **options)

    def request(self, method: str, url: str, **options: Any) -> Any:
        """Only the options the pages use: ``params`` (the query), and ``json`` (the body) or
        ``data`` with a ``Content-Type`` header (a body ``json`` cannot write, such as NaN)."""
        known = {"params", "json", "data", "headers"}
        assert set(options) <= known, f"requests options not understood: {set(options)}"
        params: dict[str, object] = options.get("params") or {}
        query = "&".join(f"{key}={value}" for key, value in params.items())
        headers: dict[str, str] = options.get("headers") or {}
        body = json.dumps(options["json"]) if "json" in options else options.get("data")
        content_type = "application/json" if "json" in options else headers.get("Content-Type")
        self.sent.append(Request(method, f"{url}?{query}" if query else url, content_type, body))
        return type("Response", (), {"status_code": 200, "text": "", "json": lambda self: {}})()


def python_request(command: Command) -> Request:
    """What a "Python (requests)" tab sends, read by running it against a recorder; with the
    pattern of its ``re.search`` or ``startswith`` when it filters lines."""
    recorder = RecordingRequests()
    code = command.python.replace("import requests\n", "")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "<page>", "exec"), {"requests": recorder})
    [sent] = recorder.sent
    searched = re.search(r're\.search\(r"([^"]+)", line\)', command.python)
    starts = re.search(r"line\.startswith\(\(?([^)]+?)\)?\)", command.python)
    if searched:
        pattern = searched[1]
    elif starts:
        names = re.findall(r'"(\w+)"', starts[1])
        pattern = "^" + (names[0] if len(names) == 1 else f"({'|'.join(names)})")
    else:
        pattern = None
    return Request(sent.method, sent.url, sent.content_type, sent.body, pattern)


def is_the_answer(command: Command, status: int, body: str) -> bool:
    if command.answer is None:
        return True
    if status != command.status:
        return False
    if command.kind == "json":
        return bool(json.loads(body) == json.loads(command.answer))
    return body == command.answer
