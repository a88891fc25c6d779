#![no_main]

const PRESENTATION: &str = r#"<p:presentation xmlns:p="p" xmlns:r="r"><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>"#;
const PRESENTATION_LINKS: &str = r#"<Relationships><Relationship Id="rId1" Type="x/slide" Target="slides/slide1.xml"/></Relationships>"#;
const SLIDE_LINKS: &str = r#"<Relationships><Relationship Id="rId1" Type="x/notesSlide" Target="../notesSlides/notesSlide1.xml"/></Relationships>"#;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    lore_ingest_fuzz::parse_package(
        "fuzz.pptx",
        &[
            ("ppt/presentation.xml", PRESENTATION),
            ("ppt/_rels/presentation.xml.rels", PRESENTATION_LINKS),
            ("ppt/slides/_rels/slide1.xml.rels", SLIDE_LINKS),
        ],
        &["ppt/slides/slide1.xml", "ppt/notesSlides/notesSlide1.xml"],
        bytes,
    )
});
