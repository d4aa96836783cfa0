"""Port of upstream's cluster/publish_upgrade_prompt.rs: nothing applies (see NOT_APPLICABLE)."""

from __future__ import annotations

NOT_APPLICABLE = {
    "upgrade_prompt_on_publish": "publishes a precompiled SpacetimeDB 1.0 WASM module and asks before the 2.0 "
    "module ABI replaces it; Python modules have one ABI, so there is no major version upgrade to confirm",
    "upgrade_prompt_suppressed_by_yes_flag": "the same 1.0 WASM fixture and major-version question as "
    "upgrade_prompt_on_publish (`publish --yes=migrate` is accepted here and changes nothing)",
}
