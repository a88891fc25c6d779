//! Keys: secrets shown once and kept as hashes, grants by collection, document groups, and
//! several processes (here threads) changing the key file at once.

use std::collections::BTreeMap;

use lore_core::{ErrorKind, Metadata};
use lore_server::keys::{Access, Keys, Permission, parse_grant};
use serde_json::json;

fn grants(list: &[&str]) -> BTreeMap<String, Permission> {
    list.iter().map(|g| parse_grant(g).unwrap()).collect()
}

#[test]
fn a_key_is_kept_as_a_hash_and_grants_what_it_says() {
    let home = tempfile::tempdir().unwrap();
    let keys = Keys::in_home(home.path());
    assert!(!keys.any().unwrap());
    let secret = keys.create("hr-bot", grants(&["handbook=write", "wiki=read"]), vec!["hr".into()]).unwrap();
    let stored = std::fs::read_to_string(home.path().join("keys.json")).unwrap();
    assert!(!stored.contains(&secret), "the secret itself is never stored");

    let access = Access::Key(keys.find(&secret).unwrap().unwrap());
    assert!(keys.find("lore-guess").unwrap().is_none());
    assert!(access.allows("handbook", Permission::Read) && access.allows("handbook", Permission::Write));
    assert!(!access.allows("handbook", Permission::Admin));
    assert!(access.allows("wiki", Permission::Read) && !access.allows("wiki", Permission::Write));
    assert!(!access.allows("payroll", Permission::Read));
    let with_groups =
        |groups: serde_json::Value| -> Metadata { [("groups".to_string(), groups)].into_iter().collect() };
    assert!(access.sees(&Metadata::new()));
    assert!(access.sees(&with_groups(json!(["legal", "hr"]))));
    assert!(!access.sees(&with_groups(json!(["legal"]))));
    assert!(!access.sees(&with_groups(json!(42))), "a malformed groups field hides the document");

    let admin = keys.create("root", grants(&["*=admin"]), vec![]).unwrap();
    let admin = Access::Key(keys.find(&admin).unwrap().unwrap());
    assert!(admin.allows("anything", Permission::Admin));
    assert!(!admin.sees(&with_groups(json!(["hr"]))), "admin of collections is not a member of every group");

    assert_eq!(keys.create("root", grants(&["a=read"]), vec![]).unwrap_err().kind(), ErrorKind::AlreadyExists);
    assert_eq!(keys.create("bad name", grants(&["a=read"]), vec![]).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(keys.create("none", BTreeMap::new(), vec![]).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert!(
        parse_grant("handbook").is_err() && parse_grant("handbook=owner").is_err() && parse_grant("=read").is_err()
    );

    assert!(keys.revoke("hr-bot").unwrap());
    assert!(!keys.revoke("hr-bot").unwrap());
    assert!(keys.find(&secret).unwrap().is_none());
}

#[test]
fn keys_created_at_once_are_all_kept() {
    let home = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let home = home.path().to_path_buf();
            std::thread::spawn(move || {
                Keys::in_home(&home).create(&format!("key{i}"), grants(&["c=read"]), vec![]).unwrap()
            })
        })
        .collect();
    let secrets: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let keys = Keys::in_home(home.path());
    assert_eq!(keys.list().unwrap().len(), 8);
    for secret in &secrets {
        assert!(keys.find(secret).unwrap().is_some());
    }
}
