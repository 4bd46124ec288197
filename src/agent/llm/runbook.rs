//! The runbook "model": offline and deterministic. Recipes per invariant (diagnose, repair,
//! verify) become reasoning text and tool calls through the same event stream as a real
//! model, so everything downstream treats it like one. It is the default without an API key
//! and the baseline for evaluation.
