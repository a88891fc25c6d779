//! Settings resolved in one place: a flag over the settings over the default, and a settings
//! file that cannot be used is refused with what is wrong in it.

use lore_core::ErrorKind;
use lore_engine::{DEFAULT_COLLECTION, DEFAULT_LLM, DEFAULT_PIPELINE, Settings};

#[test]
fn a_flag_wins_over_the_settings_file_which_wins_over_the_default() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("lore.toml"), "pipeline = \"bm25\"\ntop_k = 7\n").unwrap();
    let settings = Settings::load(Some(home.path().to_path_buf())).unwrap();
    assert_eq!(settings.home, home.path());
    assert_eq!(settings.collections_dir(), home.path().join("collections"));
    // LORE_PIPELINE and LORE_TOP_K, when the test runs with them, come first by design.
    if std::env::var_os("LORE_PIPELINE").is_none() {
        assert_eq!(settings.pipeline_or(None), "bm25");
    }
    if std::env::var_os("LORE_TOP_K").is_none() {
        assert_eq!(settings.top_k, Some(7));
    }
    assert_eq!(settings.pipeline_or(Some("hybrid")), "hybrid");

    let bare = Settings::at(home.path());
    assert_eq!(bare.pipeline_or(None), DEFAULT_PIPELINE);
    assert_eq!(bare.collection_or(None), DEFAULT_COLLECTION);
    assert_eq!(bare.collection_or(Some("notes")), "notes");
    assert_eq!(bare.llm_or(&[None, Some("smollm2")]), "smollm2");
    assert_eq!(bare.llm_or(&[Some("qwen-1.5b"), Some("smollm2")]), "qwen-1.5b");
    assert_eq!(bare.llm_or(&[None, None]), DEFAULT_LLM);
}

#[test]
fn a_settings_file_that_cannot_be_used_is_invalid_input() {
    for text in ["top_k = \"many\"\n", "colection = \"typo\"\n", "pipeline = \n"] {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("lore.toml"), text).unwrap();
        let err = Settings::load(Some(home.path().to_path_buf())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{text:?}: {err}");
        assert!(err.to_string().contains("lore.toml"), "{err}");
    }
}
