//! The Ditto error for a thing resource that is missing (or may not even be read), or that may
//! not be changed: `things:attribute.notfound`, `things:feature.property.notmodifiable`, ...

use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::signal::ThingResource;
use twinwire_protocol::{DittoError, JsonPointer};

/// The feature ID of a `/features/{id}/...` path, and the path below the first `skip` segments.
fn parts(path: &JsonPointer) -> (&str, impl Fn(usize) -> String + '_) {
    let feature = path
        .segments()
        .get(1)
        .map(String::as_str)
        .unwrap_or_default();
    (feature, move |skip| path.skip(skip).to_string())
}

/// `*.notfound` (404): the resource does not exist, or the requester may not read it.
pub fn not_found(id: &str, resource: ThingResource, path: &JsonPointer) -> DittoError {
    let (feature, rest) = parts(path);
    match resource {
        ThingResource::Thing | ThingResource::PolicyId => exc::thing_not_found(id),
        ThingResource::Definition => exc::thing_definition_not_found(id),
        ThingResource::Attributes => exc::attributes_not_found(id),
        ThingResource::Attribute => exc::attribute_not_found(id, &rest(1)),
        ThingResource::Features => exc::features_not_found(id),
        ThingResource::Feature => exc::feature_not_found(id, feature),
        ThingResource::FeatureDefinition => exc::feature_definition_not_found(id, feature),
        ThingResource::FeatureProperties => exc::feature_properties_not_found(id, feature),
        ThingResource::FeatureProperty => exc::feature_property_not_found(id, feature, &rest(3)),
        ThingResource::FeatureDesiredProperties => {
            exc::feature_desired_properties_not_found(id, feature)
        }
        ThingResource::FeatureDesiredProperty => {
            exc::feature_desired_property_not_found(id, feature, &rest(3))
        }
    }
}

/// `*.notmodifiable` (403): the requester may read the resource but not change it.
pub fn not_modifiable(id: &str, resource: ThingResource, path: &JsonPointer) -> DittoError {
    let (feature, rest) = parts(path);
    match resource {
        ThingResource::Thing | ThingResource::Definition => exc::thing_not_modifiable(id),
        ThingResource::PolicyId => exc::policy_id_not_modifiable(id),
        ThingResource::Attributes => exc::attributes_not_modifiable(id),
        ThingResource::Attribute => exc::attribute_not_modifiable(id, &rest(1)),
        ThingResource::Features => exc::features_not_modifiable(id),
        ThingResource::Feature => exc::feature_not_modifiable(id, feature),
        ThingResource::FeatureDefinition => exc::feature_definition_not_modifiable(id, feature),
        ThingResource::FeatureProperties => exc::feature_properties_not_modifiable(id, feature),
        ThingResource::FeatureProperty => {
            exc::feature_property_not_modifiable(id, feature, &rest(3))
        }
        ThingResource::FeatureDesiredProperties => {
            exc::feature_desired_properties_not_modifiable(id, feature)
        }
        ThingResource::FeatureDesiredProperty => {
            exc::feature_desired_property_not_modifiable(id, feature, &rest(3))
        }
    }
}
