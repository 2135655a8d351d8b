#pragma once
// The names people type for datasets: NAME, NAME@N (a version number), NAME@latest, NAME@TAG.
//   NAME: 1 to 128 of [A-Za-z0-9._-], starting with a letter or digit.
//   TAG:  1 to 128 of [A-Za-z0-9._-], starting with a letter, and not "latest", so a tag never
//         reads as a version number or as the newest version.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace mlops::data {

struct Latest
{
  bool operator==(const Latest&) const = default;
};

struct DatasetRef
{
  std::string name;
  std::variant<Latest, std::int64_t, std::string> version;  // latest, a number, or a tag

  std::string text() const;  // as the user would type it: "images@3", "images@latest"
};

// Throws Error(usage) saying what is wrong and what is allowed.
DatasetRef parse_dataset_ref(std::string_view text);
// The rule for every name mlops keeps (datasets, models, services): 1 to 128 letters, digits,
// '.', '_' and '-', starting with a letter or digit. `what` names it in the message.
void validate_name(std::string_view name, std::string_view what);
void validate_dataset_name(std::string_view name);
void validate_tag(std::string_view tag);

} // namespace mlops::data
