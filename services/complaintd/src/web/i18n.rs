//! The board's languages: Fluent message catalogues (`web/locales/*.ftl`, compiled in),
//! the viewer's language chosen from `?lang=`, then the `lang` cookie, then
//! `Accept-Language`; dates and times in a chosen time zone with each language's format.

use std::borrow::Cow;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The catalogues: (language tag, Fluent source).
const CATALOGUES: &[(&str, &str)] = &[
    ("en", include_str!("../../web/locales/en.ftl")),
    ("zh-CN", include_str!("../../web/locales/zh-CN.ftl")),
];

/// Every language the board speaks, English the fallback.
pub struct Catalogues {
    bundles: Vec<(LanguageIdentifier, FluentBundle<FluentResource>)>,
}

/// One viewer's language.
#[derive(Clone, Copy)]
pub struct Lang<'a> {
    catalogues: &'a Catalogues,
    index: usize,
}

impl Catalogues {
    /// Parses the compiled-in catalogues. A syntax error in one is a bug of this build
    /// (the tests parse them): it is reported, and the messages that did parse are used.
    pub fn load() -> Self {
        let bundles = CATALOGUES
            .iter()
            .map(|(tag, source)| {
                let id: LanguageIdentifier = tag.parse().unwrap_or_default();
                let resource = FluentResource::try_new((*source).to_owned()).unwrap_or_else(
                    |(resource, errors)| {
                        tracing::error!(language = tag, ?errors, "a message catalogue has errors");
                        resource
                    },
                );
                let mut bundle = FluentBundle::new_concurrent(vec![id.clone()]);
                // Plain text into HTML (escaped by the templates): no bidi isolation marks.
                bundle.set_use_isolating(false);
                if let Err(errors) = bundle.add_resource(resource) {
                    tracing::error!(
                        language = tag,
                        ?errors,
                        "a message catalogue has duplicates"
                    );
                }
                (id, bundle)
            })
            .collect();
        Self { bundles }
    }

    /// The tags of the languages, in catalogue order.
    pub fn tags(&self) -> Vec<String> {
        self.bundles.iter().map(|(id, _)| id.to_string()).collect()
    }

    /// The language for `chosen` (a `?lang=` or cookie value), else the best match of
    /// `accept` (an `Accept-Language` header), else English.
    pub fn negotiate(&self, chosen: Option<&str>, accept: Option<&str>) -> Lang<'_> {
        let available: Vec<LanguageIdentifier> =
            self.bundles.iter().map(|(id, _)| id.clone()).collect();
        let mut requested: Vec<LanguageIdentifier> = Vec::new();
        if let Some(id) = chosen.and_then(|c| c.parse().ok()) {
            requested.push(id);
        }
        if let Some(accept) = accept {
            requested.extend(fluent_langneg::accepted_languages::parse(accept));
        }
        let default = &available[0];
        let picked = fluent_langneg::negotiate_languages(
            &requested,
            &available,
            Some(default),
            fluent_langneg::NegotiationStrategy::Filtering,
        );
        let index = picked
            .first()
            .and_then(|p| available.iter().position(|a| a == *p))
            .unwrap_or(0);
        Lang {
            catalogues: self,
            index,
        }
    }

    /// The message ids and their variables in each catalogue (for the completeness test).
    #[cfg(test)]
    fn ids(&self) -> Vec<(String, std::collections::BTreeSet<String>)> {
        CATALOGUES
            .iter()
            .map(|(tag, source)| {
                let ids = source
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.starts_with(' '))
                    .filter_map(|l| l.split_once(" = "))
                    .map(|(id, value)| {
                        let vars: Vec<&str> = value
                            .split("{ $")
                            .skip(1)
                            .filter_map(|v| v.split_once(' ').map(|(name, _)| name))
                            .collect();
                        format!("{id}({})", vars.join(","))
                    })
                    .collect();
                ((*tag).to_owned(), ids)
            })
            .collect()
    }
}

impl<'a> Lang<'a> {
    fn bundle(&self) -> &'a FluentBundle<FluentResource> {
        &self.catalogues.bundles[self.index].1
    }

    /// Its tag (`en`, `zh-CN`): for `<html lang>`.
    pub fn tag(&self) -> String {
        self.catalogues.bundles[self.index].0.to_string()
    }

    pub fn is_chinese(&self) -> bool {
        self.catalogues.bundles[self.index].0.language.as_str() == "zh"
    }

    /// Message `id`, with `args`; its id itself if the catalogue lacks it (visible, and
    /// caught by the completeness test).
    pub fn msg_with(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let bundle = self.bundle();
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            return id.to_owned();
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, value.clone());
        }
        let mut errors = Vec::new();
        let text: Cow<'_, str> = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
        text.into_owned()
    }

    /// Message `id`.
    pub fn msg(&self, id: &str) -> String {
        self.msg_with(id, &[])
    }

    /// Message `id` with one text variable.
    pub fn msg1(&self, id: &str, name: &str, value: impl std::fmt::Display) -> String {
        self.msg_with(id, &[(name, FluentValue::from(value.to_string()))])
    }

    /// A message of a family (`state-`, `status-`, ...) for `key`, or `key` itself when
    /// the catalogue has none (a value newer than the catalogue).
    pub fn label(&self, family: &str, key: &str) -> String {
        let id = format!("{family}{key}");
        match self.bundle().get_message(&id) {
            Some(_) => self.msg(&id),
            None => key.to_owned(),
        }
    }

    /// A moment in `zone`, in this language's format.
    pub fn datetime(&self, at: jiff::Timestamp, zone: &jiff::tz::TimeZone) -> String {
        let z = at.to_zoned(zone.clone());
        if self.is_chinese() {
            z.strftime("%Y年%-m月%-d日 %H:%M %Z").to_string()
        } else {
            z.strftime("%-d %b %Y, %H:%M %Z").to_string()
        }
    }

    /// A calendar date in this language's format.
    pub fn date(&self, d: jiff::civil::Date) -> String {
        if self.is_chinese() {
            d.strftime("%Y年%-m月%-d日").to_string()
        } else {
            d.strftime("%-d %b %Y").to_string()
        }
    }

    /// A short date (chart axes).
    pub fn short_date(&self, d: jiff::civil::Date) -> String {
        if self.is_chinese() {
            d.strftime("%-m月%-d日").to_string()
        } else {
            d.strftime("%-d %b").to_string()
        }
    }

    /// A length of time, to the minute.
    pub fn duration(&self, seconds: i64) -> String {
        let seconds = seconds.unsigned_abs();
        let (days, hours, minutes) = (
            seconds / 86_400,
            seconds % 86_400 / 3600,
            seconds % 3600 / 60,
        );
        let n = |v: u64| FluentValue::from(v.to_string());
        if days > 0 {
            self.msg_with("duration-dh", &[("days", n(days)), ("hours", n(hours))])
        } else if hours > 0 {
            self.msg_with(
                "duration-hm",
                &[("hours", n(hours)), ("minutes", n(minutes))],
            )
        } else {
            self.msg_with("duration-m", &[("minutes", n(minutes))])
        }
    }

    /// A ratio as a percentage.
    pub fn percent(&self, ratio: f64) -> String {
        format!("{:.1}%", ratio * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_message_with_the_same_variables() {
        let catalogues = Catalogues::load();
        let ids = catalogues.ids();
        let (first, first_ids) = &ids[0];
        assert!(
            first_ids.len() > 100,
            "{first} has {} messages",
            first_ids.len()
        );
        for (tag, tag_ids) in &ids[1..] {
            let missing: Vec<_> = first_ids.difference(tag_ids).collect();
            let extra: Vec<_> = tag_ids.difference(first_ids).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{tag} differs from {first}: missing {missing:?}, extra {extra:?}"
            );
        }
        for tag in catalogues.tags() {
            let lang = catalogues.negotiate(Some(&tag), None);
            assert_eq!(lang.tag(), tag);
            for (id, _) in first_ids.iter().filter_map(|i| i.split_once('(')) {
                assert!(
                    lang.bundle().get_message(id).is_some(),
                    "{tag} has no message {id}"
                );
            }
        }
    }

    #[test]
    fn every_catalogue_parses_without_errors() {
        for (tag, source) in CATALOGUES {
            if let Err((_, errors)) = FluentResource::try_new((*source).to_owned()) {
                panic!("{tag}: {errors:?}");
            }
        }
    }

    #[test]
    fn the_language_comes_from_the_choice_then_the_browser() {
        let c = Catalogues::load();
        assert_eq!(
            c.negotiate(None, Some("zh-CN,zh;q=0.9,en;q=0.8")).tag(),
            "zh-CN"
        );
        assert_eq!(c.negotiate(None, Some("zh")).tag(), "zh-CN");
        assert_eq!(c.negotiate(None, Some("fr-FR,en-GB;q=0.5")).tag(), "en");
        assert_eq!(c.negotiate(Some("en"), Some("zh-CN")).tag(), "en");
        assert_eq!(c.negotiate(None, None).tag(), "en");
        assert_eq!(
            c.negotiate(Some("not a tag!"), Some("zh-TW")).tag(),
            "zh-CN"
        );
        let zh = c.negotiate(Some("zh-CN"), None);
        assert_eq!(zh.msg("state-breached"), "已超时");
        assert_eq!(zh.duration(3 * 86_400 + 4 * 3600), "3天4小时");
        let en = c.negotiate(Some("en"), None);
        assert_eq!(en.duration(2 * 3600 + 5 * 60), "2 h 5 min");
        let at = jiff::Timestamp::from_second(1_767_225_600).unwrap(); // 2026-01-01T00:00Z
        let shanghai = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        assert_eq!(zh.datetime(at, &shanghai), "2026年1月1日 08:00 CST");
        assert_eq!(
            en.datetime(at, &jiff::tz::TimeZone::UTC),
            "1 Jan 2026, 00:00 UTC"
        );
    }
}
