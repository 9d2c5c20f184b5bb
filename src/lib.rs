//! churnseg: churn risk, 80/20/30 value segments and loyalty targets from subscriber
//! records and touchpoint history. The modules follow the pipeline's stages.

pub mod taxonomy;
pub mod write;
