//! The inbox's activity parser over arbitrary bytes: no panic, and whatever it accepts keeps the
//! invariants the effects rely on (an actor and id on one http(s) origin, a short type).
#![no_main]

use hortus_fuzz::incoming::Activity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(activity) = Activity::parse(data) else {
        return;
    };
    assert!(!activity.kind.is_empty() && activity.kind.len() <= 64);
    let id = url::Url::parse(&activity.id).expect("id is a URL");
    let actor = url::Url::parse(&activity.actor).expect("actor is a URL");
    assert_eq!(id.origin(), actor.origin());
    assert!(matches!(actor.scheme(), "http" | "https"));
    assert!(activity.raw.is_object());
});
