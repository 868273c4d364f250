// batch/v1 Jobs in the embedded API server: v1.20's defaulting and selector
// generation and ValidateJob's rules, checked against hand-written objects
// and messages; then the same through the server (discovery, create, watch,
// field selector, immutable fields).
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/api_server.h"
#include "apiserver/defaults.h"
#include "apiserver/resources.h"
#include "apiserver/validation.h"
#include "kube/error.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

const ValidationTarget kJobTarget{"batch", "v1", "jobs", "Job", true, ""};
const kube::GroupVersionResource kJobs{"batch", "v1", "jobs", true};

json PiJob(json spec_extra = json::object()) {
  json job = {{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata", {{"name", "pi"}, {"namespace", "default"}}},
              {"spec",
               {{"template",
                 {{"spec",
                   {{"containers", json::array({{{"name", "pi"}, {"image", "perl:5.34"}}})},
                    {"restartPolicy", "Never"}}}}}}}};
  job["spec"].update(spec_extra);
  return job;
}

// Defaulting, then what the server does before validating a create.
json Created(json job, const std::string& uid = "u-1") {
  ApplyDefaults("batch", "Job", job);
  job["metadata"]["uid"] = uid;
  PrepareForValidation("batch", "Job", job);
  return job;
}

std::string InvalidMessage(const json& job) {
  auto r = ValidateCreate(kJobTarget, job, nullptr);
  return r.ok() ? "valid" : r.error().message();
}

TEST(JobDefaultsTest, FillsCountsBackoffTemplateAndGeneratedSelectorAsV120) {
  const json expected = {
      {"apiVersion", "batch/v1"},
      {"kind", "Job"},
      {"metadata",
       {{"name", "pi"},
        {"namespace", "default"},
        {"uid", "u-1"},
        // Read back from storage, an object without labels shows its template's.
        {"labels", {{"controller-uid", "u-1"}, {"job-name", "pi"}}}}},
      {"spec",
       {{"completions", 1},
        {"parallelism", 1},
        {"backoffLimit", 6},
        {"selector", {{"matchLabels", {{"controller-uid", "u-1"}}}}},
        {"template",
         {{"metadata",
           {{"creationTimestamp", nullptr},
            {"labels", {{"controller-uid", "u-1"}, {"job-name", "pi"}}}}},
          {"spec",
           {{"containers", json::array({{{"name", "pi"},
                                         {"image", "perl:5.34"},
                                         {"imagePullPolicy", "IfNotPresent"},
                                         {"terminationMessagePath", "/dev/termination-log"},
                                         {"terminationMessagePolicy", "File"},
                                         {"resources", json::object()}}})},
            {"restartPolicy", "Never"},
            {"dnsPolicy", "ClusterFirst"},
            {"terminationGracePeriodSeconds", 30},
            {"securityContext", json::object()},
            {"schedulerName", "default-scheduler"}}}}}}},
      {"status", json::object()}};
  const json job = Created(PiJob());
  EXPECT_EQ(job, expected) << job.dump(2);
  EXPECT_EQ(InvalidMessage(job), "valid");
}

TEST(JobDefaultsTest, ParallelismAloneLeavesCompletionsUnset) {
  json job = PiJob({{"parallelism", 3}});
  ApplyDefaults("batch", "Job", job);
  EXPECT_EQ(job["spec"].value("parallelism", -1), 3);
  EXPECT_FALSE(job["spec"].contains("completions"));
  json fixed = PiJob({{"completions", 5}, {"backoffLimit", 0}});
  ApplyDefaults("batch", "Job", fixed);
  EXPECT_EQ(fixed["spec"].value("completions", -1), 5);
  EXPECT_EQ(fixed["spec"].value("parallelism", -1), 1);
  EXPECT_EQ(fixed["spec"].value("backoffLimit", -1), 0);  // set, so not defaulted
}

TEST(JobDefaultsTest, ObjectKeepsTheUsersTemplateLabelsOnly) {
  json job = PiJob();
  job["spec"]["template"]["metadata"] = {{"labels", {{"app", "train"}}}};
  job = Created(job, "u-2");
  // Defaulting copied {app: train} before the selector was generated.
  EXPECT_EQ(job["metadata"]["labels"], json({{"app", "train"}}));
  EXPECT_EQ(job["spec"]["template"]["metadata"]["labels"],
            json({{"app", "train"}, {"controller-uid", "u-2"}, {"job-name", "pi"}}));
  EXPECT_EQ(InvalidMessage(job), "valid");
}

TEST(JobDefaultsTest, ManualSelectorIsLeftAlone) {
  json job = PiJob({{"manualSelector", true}, {"selector", {{"matchLabels", {{"app", "x"}}}}}});
  job["spec"]["template"]["metadata"] = {{"labels", {{"app", "x"}}}};
  job = Created(job);
  EXPECT_EQ(job["spec"]["selector"], json({{"matchLabels", {{"app", "x"}}}}));
  EXPECT_EQ(job["spec"]["template"]["metadata"]["labels"], json({{"app", "x"}}));
  EXPECT_EQ(InvalidMessage(job), "valid");
}

TEST(JobValidationTest, RestartPolicyMustBeOnFailureOrNever) {
  json job = PiJob();
  job["spec"]["template"]["spec"].erase("restartPolicy");  // defaults to Always
  EXPECT_EQ(InvalidMessage(Created(job)),
            "Job.batch \"pi\" is invalid: spec.template.spec.restartPolicy: Unsupported value: "
            "\"Always\": supported values: \"OnFailure\", \"Never\"");
}

TEST(JobValidationTest, CountsMustBeNonNegative) {
  const json job = Created(PiJob({{"parallelism", -1}, {"completions", 2}, {"backoffLimit", -2}}));
  EXPECT_EQ(InvalidMessage(job),
            "Job.batch \"pi\" is invalid: [spec.parallelism: Invalid value: -1: must be greater "
            "than or equal to 0, spec.backoffLimit: Invalid value: -2: must be greater than or "
            "equal to 0]");
}

TEST(JobValidationTest, GeneratedLabelsMustNameThisJob) {
  json job = PiJob();
  job["spec"]["template"]["metadata"] = {{"labels", {{"job-name", "other"}}}};
  auto r = ValidateCreate(kJobTarget, Created(job), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), 422);
  EXPECT_EQ(r.error().message(),
            "Job.batch \"pi\" is invalid: spec.template.metadata.labels[job-name]: Invalid value: "
            "map[string]string{\"controller-uid\":\"u-1\", \"job-name\":\"other\"}: must be 'pi'");
  ASSERT_EQ(r.error().details().causes.size(), 1u);
  EXPECT_EQ(r.error().details().causes[0].field, "spec.template.metadata.labels[job-name]");
  EXPECT_EQ(r.error().details().causes[0].reason, "FieldValueInvalid");
}

TEST(JobValidationTest, ForeignSelectorIsNotAutoGenerated) {
  json job = PiJob({{"selector", {{"matchLabels", {{"controller-uid", "someone-else"}}}}}});
  EXPECT_EQ(InvalidMessage(Created(job)),
            "Job.batch \"pi\" is invalid: [spec.selector: Invalid value: "
            "&LabelSelector{MatchLabels:map[string]string{controller-uid: someone-else,},"
            "MatchExpressions:[]LabelSelectorRequirement{},}: `selector` not auto-generated, "
            "spec.template.metadata.labels: Invalid value: map[string]string{\"controller-uid\":"
            "\"u-1\", \"job-name\":\"pi\"}: `selector` does not match template `labels`]");
}

TEST(JobValidationTest, ManualSelectorIsRequiredAndMustMatchTheTemplate) {
  json job = PiJob({{"manualSelector", true}});
  job["spec"]["template"]["metadata"] = {{"labels", {{"app", "x"}}}};
  EXPECT_EQ(InvalidMessage(Created(job)),
            "Job.batch \"pi\" is invalid: [spec.selector: Required value, "
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: "
            "`selector` does not match template `labels`]");
  json bad_op =
      PiJob({{"manualSelector", true},
             {"selector",
              {{"matchExpressions", json::array({{{"key", "app"}, {"operator", "Maybe"}}})}}}});
  EXPECT_EQ(InvalidMessage(Created(bad_op)),
            "Job.batch \"pi\" is invalid: spec.selector.matchExpressions[0].operator: Invalid "
            "value: \"Maybe\": not a valid selector operator");
}

TEST(JobValidationTest, CompletionsSelectorAndTemplateAreImmutable) {
  const json old = Created(PiJob());
  json updated = old;
  updated["spec"]["parallelism"] = 4;  // mutable
  EXPECT_TRUE(ValidateUpdate(kJobTarget, old, updated, nullptr).ok());
  updated["spec"]["completions"] = 2;
  auto r = ValidateUpdate(kJobTarget, old, updated, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(),
            "Job.batch \"pi\" is invalid: spec.completions: Invalid value: 2: field is immutable");
}

TEST(JobResourcesTest, DiscoveryServesBatchV1JobsWithStatus) {
  ResourceRegistry registry;
  auto jobs = registry.Find("batch", "v1", "jobs");
  ASSERT_TRUE(jobs);
  EXPECT_EQ(jobs->kind, "Job");
  EXPECT_TRUE(jobs->tracks_generation);
  const json list = json::parse(*registry.ResourceListJson("batch", "v1"));
  ASSERT_EQ(list["resources"].size(), 2u);
  EXPECT_EQ(
      list["resources"][0],
      json({{"name", "jobs"},
            {"singularName", ""},
            {"namespaced", true},
            {"kind", "Job"},
            {"verbs",
             {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}},
            {"categories", {"all"}},
            {"storageVersionHash", "mudhfqk/qZY="}}));  // as kube-apiserver v1.20 lists it
  EXPECT_EQ(list["resources"][1]["name"], "jobs/status");
  EXPECT_EQ(list["resources"][1]["verbs"], json({"get", "patch", "update"}));
  EXPECT_TRUE(registry.GroupJson("batch"));
}

class JobServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ApiServer::Start({});
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(server).value();
    kube::ClientConfig cfg;
    cfg.server = server_->url();
    auto client = kube::RestClient::Create(cfg);
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
  }
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
};

TEST_F(JobServerTest, CreateGeneratesTheSelectorAndWatchSeesTheJob) {
  auto list = client_->List({kJobs, "default", "", ""});
  ASSERT_TRUE(list.ok()) << list.error().ToString();
  const std::string rv = (*list)["metadata"].value("resourceVersion", "");

  auto created = client_->Create({kJobs, "default", "", ""}, PiJob());
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  const std::string uid = (*created)["metadata"]["uid"];
  EXPECT_EQ((*created)["metadata"]["generation"], 1);
  EXPECT_EQ((*created)["metadata"]["labels"], json({{"controller-uid", uid}, {"job-name", "pi"}}));
  EXPECT_EQ((*created)["spec"]["selector"], json({{"matchLabels", {{"controller-uid", uid}}}}));
  EXPECT_EQ((*created)["spec"]["backoffLimit"], 6);
  EXPECT_EQ((*created)["status"], json::object());

  std::optional<json> added;
  auto watched =
      client_->Watch({kJobs, "default", "", ""}, {.resource_version = rv, .timeout_seconds = 5},
                     [&](kube::WatchEvent&& e) {
                       if (e.type != kube::WatchEventType::kAdded) return true;
                       added = json::parse(e.object_json);
                       return false;
                     });
  ASSERT_TRUE(watched.ok()) << watched.error().ToString();
  ASSERT_TRUE(added);
  EXPECT_EQ((*added)["metadata"]["name"], "pi");

  // JobToSelectableFields: status.successful is status.succeeded, 0 when unset.
  auto none = client_->List({kJobs, "default", "", ""}, {.field_selector = "status.successful=0"});
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  EXPECT_EQ((*none)["items"].size(), 1u);

  json changed = *created;
  changed["spec"]["completions"] = 3;
  auto replaced = client_->Replace({kJobs, "default", "pi", ""}, changed);
  ASSERT_FALSE(replaced.ok());
  EXPECT_EQ(replaced.error().code(), 422);
  EXPECT_EQ(replaced.error().message(),
            "Job.batch \"pi\" is invalid: spec.completions: Invalid value: 3: field is immutable");
}

TEST_F(JobServerTest, DefaultRestartPolicyIsRejectedWithItsCause) {
  json job = PiJob();
  job["spec"]["template"]["spec"].erase("restartPolicy");
  auto created = client_->Create({kJobs, "default", "", ""}, job);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code(), 422);
  ASSERT_EQ(created.error().details().causes.size(), 1u);
  EXPECT_EQ(created.error().details().causes[0].field, "spec.template.spec.restartPolicy");
  EXPECT_EQ(created.error().details().causes[0].reason, "FieldValueNotSupported");
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
