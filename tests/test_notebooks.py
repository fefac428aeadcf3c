"""Every notebook runs top to bottom in a real Jupyter kernel, and is stored without outputs.

The notebooks find the repository root themselves; one runs from `notebooks/`, the other from the
repository root, so both working directories are covered.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ipykernel  # noqa: F401  (the kernel the notebooks run in; part of the test extra)
import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "python3"
RUN_FROM = {"explore.ipynb": NOTEBOOKS, "writing-a-rule.ipynb": ROOT}


def _ensure_kernel() -> None:
    """The `python3` kernel spec, installed into this interpreter's prefix if no spec is found."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix)


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_has_a_working_directory() -> None:
    assert sorted(p.name for p in _notebooks()) == sorted(RUN_FROM)


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "strip outputs before committing"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_runs_without_errors(path: Path) -> None:
    _ensure_kernel()
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=120,
                                     resources={"metadata": {"path": str(RUN_FROM[path.name])}})
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def strip(path: Path) -> None:
    """Remove outputs and execution counts (run this file as a script before committing notebooks)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    for notebook in _notebooks():
        strip(notebook)
        print(f"stripped {notebook.relative_to(ROOT)}")
