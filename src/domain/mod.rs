//! Values parsed at the edge and the evidence a decision is made from.

pub mod cpf;
pub mod evidence;

pub use cpf::Cpf;
