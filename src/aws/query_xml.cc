#include "aws/query_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <charconv>
#include <memory>

namespace dolmen::aws {
namespace {

using Doc = std::unique_ptr<xmlDoc, void (*)(xmlDoc*)>;

Result<Doc> Parse(const std::string& xml) {
  // NONET: never fetch a DTD or entity from the network; errors are returned, not printed.
  xmlDoc* doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "answer.xml", nullptr,
                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (doc == nullptr || xmlDocGetRootElement(doc) == nullptr) {
    if (doc != nullptr) xmlFreeDoc(doc);
    return InvalidArgument("the answer is not an XML document: " + xml.substr(0, 200));
  }
  return Doc(doc, xmlFreeDoc);
}

bool Named(const xmlNode* node, const char* name) {
  return node->type == XML_ELEMENT_NODE &&
         xmlStrcmp(node->name, reinterpret_cast<const xmlChar*>(name)) == 0;
}

const xmlNode* Child(const xmlNode* parent, const char* name) {
  if (parent == nullptr) return nullptr;
  for (const xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (Named(c, name)) return c;
  }
  return nullptr;
}

// The first element reached by following `path` from `node`, or nullptr.
const xmlNode* Find(const xmlNode* node, std::initializer_list<const char*> path) {
  for (const char* name : path) node = Child(node, name);
  return node;
}

std::vector<const xmlNode*> Children(const xmlNode* parent, const char* name) {
  std::vector<const xmlNode*> out;
  if (parent == nullptr) return out;
  for (const xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (Named(c, name)) out.push_back(c);
  }
  return out;
}

std::string Text(const xmlNode* node) {
  if (node == nullptr) return "";
  xmlChar* content = xmlNodeGetContent(node);
  std::string text = content == nullptr ? "" : reinterpret_cast<const char*>(content);
  xmlFree(content);
  return text;
}

std::string ChildText(const xmlNode* parent, const char* name) { return Text(Child(parent, name)); }

Result<const xmlNode*> Require(const xmlNode* root, std::initializer_list<const char*> path,
                               const char* what) {
  const xmlNode* node = Find(root, path);
  if (node == nullptr) {
    return InvalidArgument(std::string("the ") + what + " answer lacks " + *path.begin() +
                           "/...: not a " + what + " response");
  }
  return node;
}

AsgInstance ReadAsgInstance(const xmlNode* member) {
  AsgInstance i;
  i.instance_id = ChildText(member, "InstanceId");
  i.group_name = ChildText(member, "AutoScalingGroupName");
  i.lifecycle_state = ChildText(member, "LifecycleState");
  i.health_status = ChildText(member, "HealthStatus");
  return i;
}

}  // namespace

Result<std::vector<AsgInstance>> ParseAutoScalingInstances(const std::string& xml) {
  ASSIGN_OR_RETURN(Doc doc, Parse(xml));
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!Named(root, "DescribeAutoScalingInstancesResponse")) {
    return InvalidArgument("not a DescribeAutoScalingInstancesResponse: " + xml.substr(0, 200));
  }
  ASSIGN_OR_RETURN(const xmlNode* list,
                   Require(root, {"DescribeAutoScalingInstancesResult", "AutoScalingInstances"},
                           "DescribeAutoScalingInstances"));
  std::vector<AsgInstance> out;
  for (const xmlNode* m : Children(list, "member")) out.push_back(ReadAsgInstance(m));
  return out;
}

Result<std::vector<AutoScalingGroup>> ParseAutoScalingGroups(const std::string& xml, Page* page) {
  ASSIGN_OR_RETURN(Doc doc, Parse(xml));
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!Named(root, "DescribeAutoScalingGroupsResponse")) {
    return InvalidArgument("not a DescribeAutoScalingGroupsResponse: " + xml.substr(0, 200));
  }
  ASSIGN_OR_RETURN(const xmlNode* result,
                   Require(root, {"DescribeAutoScalingGroupsResult"}, "DescribeAutoScalingGroups"));
  page->next_token = ChildText(result, "NextToken");
  std::vector<AutoScalingGroup> out;
  for (const xmlNode* m : Children(Child(result, "AutoScalingGroups"), "member")) {
    AutoScalingGroup g;
    g.name = ChildText(m, "AutoScalingGroupName");
    const std::string desired = ChildText(m, "DesiredCapacity");
    const auto [end, ec] =
        std::from_chars(desired.data(), desired.data() + desired.size(), g.desired_capacity);
    if (ec != std::errc() || end != desired.data() + desired.size() || g.desired_capacity < 0) {
      return InvalidArgument("group " + g.name + ": DesiredCapacity is not a count: '" + desired +
                             "'");
    }
    for (const xmlNode* i : Children(Child(m, "Instances"), "member")) {
      g.instances.push_back(ReadAsgInstance(i));
      g.instances.back().group_name = g.name;
    }
    out.push_back(std::move(g));
  }
  return out;
}

Result<std::vector<Ec2Instance>> ParseInstances(const std::string& xml, Page* page) {
  ASSIGN_OR_RETURN(Doc doc, Parse(xml));
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!Named(root, "DescribeInstancesResponse")) {
    return InvalidArgument("not a DescribeInstancesResponse: " + xml.substr(0, 200));
  }
  page->next_token = ChildText(root, "nextToken");
  std::vector<Ec2Instance> out;
  for (const xmlNode* reservation : Children(Child(root, "reservationSet"), "item")) {
    for (const xmlNode* item : Children(Child(reservation, "instancesSet"), "item")) {
      Ec2Instance i;
      i.instance_id = ChildText(item, "instanceId");
      i.private_ip = ChildText(item, "privateIpAddress");
      i.state = Text(Find(item, {"instanceState", "name"}));
      out.push_back(std::move(i));
    }
  }
  return out;
}

QueryError ParseQueryError(const std::string& xml) {
  QueryError error;
  Result<Doc> doc = Parse(xml);
  if (!doc.ok()) return error;
  const xmlNode* root = xmlDocGetRootElement(doc->get());
  const xmlNode* e =
      Named(root, "ErrorResponse") ? Child(root, "Error") : Find(root, {"Errors", "Error"});
  error.code = ChildText(e, "Code");
  error.message = ChildText(e, "Message");
  return error;
}

}  // namespace dolmen::aws
