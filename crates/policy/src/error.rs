use thiserror::Error;

#[derive(Debug, Error)]
pub enum PolicyError {
    /// The text is not Cedar, or breaks the schema; the message is the
    /// parser's or validator's, with the policy it concerns.
    #[error("{0}")]
    Invalid(String),
    /// A request could not be put to Cedar (an id or value it cannot hold).
    #[error("cannot evaluate the request: {0}")]
    Request(String),
}
