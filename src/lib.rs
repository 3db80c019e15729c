//! wsmux
pub fn y(){}
