#pragma once
// The model registry: which model is where. A version is a file in the object store, pinned while
// it lives, with its signature (ONNX, from `mlops-worker inspect`), its lineage (run, datasets,
// git commit) and the aliases that promotions move; every alias move is recorded.
//
// References: NAME@N, NAME@ALIAS, NAME@latest (the newest live version), or NAME alone.
// Aliases follow MLflow's rule: letters, digits, '_' and '-', and never v<digits> or "latest".

#include "mlops/home/home.hpp"
#include "mlops/objects/digest.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlops::registry {

struct ModelRef
{
  std::string name;
  std::optional<std::int64_t> number;  // NAME@N
  std::optional<std::string> alias;    // NAME@ALIAS; neither: latest
  std::string text() const;
};

// Throws Error(usage) explaining the rules.
ModelRef parse_model_ref(const std::string& text);
void validate_model_name(const std::string& name);
void validate_alias(const std::string& alias);

struct DatasetLink
{
  std::string dataset;
  std::int64_t version = 0;
};

struct ModelVersion
{
  std::string model;
  std::int64_t version = 0;
  objects::Digest digest;
  std::int64_t size = 0;
  std::string file_name;
  std::string format;                 // onnx or unknown
  std::optional<nlohmann::json> signature;
  std::string description;
  std::optional<std::string> run_id;
  std::optional<std::string> git_commit;
  std::optional<std::string> git_branch;
  std::optional<bool> git_dirty;
  std::optional<std::int64_t> same_as;
  std::string created_at;
  std::optional<std::string> archived_at;
  std::optional<std::string> deleted_at;
  std::vector<DatasetLink> datasets;
  std::map<std::string, std::string> tags;
  std::vector<std::string> aliases;

  std::string ref() const { return model + "@" + std::to_string(version); }
};

struct RegisterRequest
{
  std::string name;
  std::optional<std::filesystem::path> path;  // a file, or:
  std::optional<std::string> artifact;        // an object's digest or prefix, or:
  std::optional<std::string> run;             // with run_path, a run's artifact
  std::optional<std::string> run_path;
  std::vector<std::string> datasets;          // DS@REF
  std::string description;
  std::vector<std::pair<std::string, std::string>> tags;
  bool dedupe = false;
  std::filesystem::path worker;               // mlops-worker, for inspection
};

struct RegisterOutcome
{
  ModelVersion version;
  bool created = false;  // false only with dedupe, when the content was registered already
};

struct AliasMove
{
  std::string alias;
  std::optional<std::int64_t> from;
  std::optional<std::int64_t> to;
  std::string at;
  std::string command;
};

struct GateRequest
{
  std::string metric;
  bool higher_is_better = true;
  std::optional<double> min_delta;
  std::optional<double> max_regression;
  bool signature_compatible = false;
};

struct GateReport
{
  bool passed = true;
  std::vector<std::string> lines;  // what was checked, and how it went
  nlohmann::json document;
};

class Registry
{
public:
  Registry(const Home& home, store::Database& db);

  RegisterOutcome register_version(const RegisterRequest& request);
  std::vector<std::pair<std::string, std::optional<ModelVersion>>> models();  // name, latest live version
  std::vector<ModelVersion> versions(const std::string& name, bool include_deleted);
  ModelVersion resolve(const ModelRef& ref);  // Error(not_found)
  // Returns the previous version, when the alias moved; Error(conflict) for archived versions.
  std::optional<std::int64_t> set_alias(const std::string& name, const std::string& alias, std::int64_t version,
                                        const std::string& command, bool& changed);
  // As set_alias, inside the caller's write transaction: a promotion moves the alias and records
  // its own state in one transaction.
  std::optional<std::int64_t> set_alias_in_transaction(const std::string& name, const std::string& alias,
                                                       std::int64_t version, const std::string& command, bool& changed);
  std::int64_t remove_alias(const std::string& name, const std::string& alias, const std::string& command);
  std::vector<AliasMove> alias_history(const std::string& name);
  void tag(const ModelRef& ref, const std::string& key, const std::string& value);
  bool set_archived(const ModelRef& ref, bool archived);
  ModelVersion remove(const ModelRef& ref);
  GateReport gate(const ModelRef& candidate, const ModelRef& baseline, const GateRequest& request);
  nlohmann::json lineage(const ModelRef& ref);

private:
  ModelVersion read_version(const std::string& name, std::int64_t number);
  void require_model(const std::string& name);

  const Home& m_home;
  store::Database& m_db;
};

// Whether callers of `baseline` (signatures as inspect gives them) can call `candidate`: every
// baseline input exists in the candidate with the same type and a compatible shape, the
// candidate needs no other input, and every baseline output is still produced. Returns the
// problems; empty when compatible.
std::vector<std::string> signature_problems(const nlohmann::json& baseline, const nlohmann::json& candidate);

} // namespace mlops::registry
