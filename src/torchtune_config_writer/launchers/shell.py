"""A run's folder as one shell word that a launcher's script resolves as OmegaConf would."""

from __future__ import annotations

import re
import shlex

# ${oc.env:VAR} and ${oc.env:VAR,default}: the only interpolations a folder of a script may
# hold, each a shell expansion of the same variable (the others are filled in before).
_ENV = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)(?:,([A-Za-z0-9_./-]*))?\}")


class UnresolvableFolder(ValueError):
    """A folder whose interpolation a script cannot resolve as OmegaConf would."""


def shell_path(folder: str) -> str:
    """``folder`` as one shell word that the task resolves as OmegaConf resolves the config on
    the same machine: ``${oc.env:SCRATCH}/x`` is ``"${SCRATCH?…}"'/x'`` (unset: the task fails,
    as torchtune does), ``${oc.env:SCRATCH,/tmp}`` is ``"${SCRATCH-/tmp}"``; the rest quoted.

    Raises:
        UnresolvableFolder: another interpolation (a resolver the script cannot run).
    """
    words, end = [], 0
    for match in _ENV.finditer(folder):
        if match.start() > end:
            words.append(shlex.quote(folder[end : match.start()]))
        variable, default = match[1], match[2]
        if default is None:
            words.append(f'"${{{variable}?is not set, and the config reads it}}"')
        else:
            words.append(f'"${{{variable}-{default}}}"')
        end = match.end()
    rest = folder[end:]
    if "${" in rest:
        raise UnresolvableFolder(rest)
    if rest or not words:
        words.append(shlex.quote(rest))
    return "".join(words)
