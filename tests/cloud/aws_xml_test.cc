#include "cloud/aws_xml.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::cloud {
namespace {

TEST(AwsXmlTest, ParsesElementsTextEntitiesAndDropsNamespaces) {
  auto doc = ParseXml(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!-- a comment -->\n"
      "<a:Root xmlns:a=\"urn:x\" xmlns=\"urn:y\" k='v'>\n"
      "  <Name>x &amp; y &lt;z&gt; &quot;q&quot; &apos;s&apos; &#65;&#x42;&#xE9;</Name>\n"
      "  <Empty/>\n"
      "  <Data><![CDATA[<raw & text>]]></Data>\n"
      "  <member>1</member><member>2</member>\n"
      "  <Nested><Deep>d</Deep></Nested>\n"
      "</a:Root>\n");
  ASSERT_TRUE(doc.ok()) << doc.error().ToString();
  EXPECT_EQ(doc->name, "Root");
  EXPECT_EQ(doc->ChildText("Name"), "x & y <z> \"q\" 's' AB\xC3\xA9");
  ASSERT_NE(doc->Child("Empty"), nullptr);
  EXPECT_EQ(doc->ChildText("Empty"), "");
  EXPECT_EQ(doc->ChildText("Data"), "<raw & text>");
  ASSERT_EQ(doc->Children("member").size(), 2u);
  EXPECT_EQ(doc->Children("member")[1]->text, "2");
  ASSERT_NE(doc->Find("Nested/Deep"), nullptr);
  EXPECT_EQ(doc->Find("Nested/Deep")->text, "d");
  EXPECT_EQ(doc->Find("Nested/Missing"), nullptr);
  EXPECT_EQ(doc->ChildText("Missing"), "");
}

TEST(AwsXmlTest, RejectsMalformedDocumentsWithAnOffset) {
  struct Case {
    const char* doc;
    const char* error;
  };
  for (const Case& c : {
           Case{"", "expected a root element"},
           Case{"<a>", "unterminated element <a>"},
           Case{"<a></b>", "</b> does not close <a>"},
           Case{"<a>x</a><b/>", "content after the root element"},
           Case{"<a>&bogus;</a>", "unknown entity &bogus;"},
           Case{"<a>&#0;</a>", "invalid character reference"},
           Case{"<a>&#x110000;</a>", "out of range"},
           Case{"<a>&amp</a>", "malformed entity"},
           Case{"<!DOCTYPE a [<!ENTITY x \"y\">]><a/>", "DOCTYPE"},
           Case{"<a b=\"1\"c=\"2\"/>", "expected whitespace before an attribute"},
           Case{"<a b=1/>", "expected a quote"},
           Case{"<a><![CDATA[x</a>", "unterminated CDATA"},
           Case{"<a><!-- x</a>", "unterminated comment"},
           Case{"text", "expected a root element"},
           // Found by aws_xml_fuzz: a prefix without a local part.
           Case{"<LimEdtEi:/>", "element <LimEdtEi:> has no local name"},
           Case{"<a><x:></x:></a>", "element <x:> has no local name"},
       }) {
    auto r = ParseXml(c.doc);
    ASSERT_FALSE(r.ok()) << c.doc;
    EXPECT_NE(r.error().message().find(c.error), std::string::npos)
        << c.doc << " -> " << r.error().message();
    EXPECT_NE(r.error().message().find("at byte"), std::string::npos);
  }
}

TEST(AwsXmlTest, LimitsNestingDepth) {
  std::string deep;
  for (int i = 0; i < 64; ++i)
    deep += "<a>";
  for (int i = 0; i < 64; ++i)
    deep += "</a>";
  EXPECT_TRUE(ParseXml(deep).ok());
  std::string deeper = "<a>" + deep + "</a>";
  auto r = ParseXml(deeper);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("deeper than 64"), std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
