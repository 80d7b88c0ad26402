//! Values parsed at the edge and the evidence a decision is made from.

pub mod cpf;
pub mod evidence;
pub mod field;
pub mod fraud;
pub mod link;
pub mod schema;
pub mod transitions;

pub use cpf::Cpf;
pub use field::FieldError;
pub use link::LinkKey;
