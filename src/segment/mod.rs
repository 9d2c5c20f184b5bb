//! Segmentation (SPEC §1, §6): 80/20/30 value segments by trailing profit, the whale
//! curve, the forecast of next period's segment, lifecycle stages, churn drivers and
//! loyalty actions with their touchpoints.

pub mod driver;
pub mod forecast;
pub mod lifecycle;
pub mod loyalty;
pub mod movement;
pub mod touchpoints;
pub mod value;

pub use driver::ChurnDriver;
pub use lifecycle::LifecycleStage;
pub use loyalty::LoyaltyAction;
pub use movement::Movement;
pub use value::{ValueSegment, WhaleCurve};
