// SigV4 against AWS's published test vectors (the aws-sig-v4-test-suite's get-vanilla and
// get-vanilla-query-order-key-case, and the signing key of the IAM example in AWS's
// "Create a signed AWS API request" page), and a Query API POST whose expected values were
// computed with botocore's SigV4Auth (python3-botocore 1.29).
#include "aws/sigv4.h"

#include <gtest/gtest.h>

#include "aws/test_support.h"

namespace dolmen::aws {
namespace {

constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr const char* kEmptySha =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += std::string{kDigits[c >> 4], kDigits[c & 15]};
  return out;
}

std::chrono::system_clock::time_point At20150830T123600Z() {
  return std::chrono::system_clock::from_time_t(1440938160);
}

TEST(SigV4, GetVanillaStepByStep) {
  const Headers headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  const CanonicalForm form = CanonicalRequest("GET", "/", "", headers, kEmptySha);
  EXPECT_EQ(form.request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n" +
                std::string(kEmptySha));
  EXPECT_EQ(form.signed_headers, "host;x-amz-date");
  const std::string to_sign =
      StringToSign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", form.request);
  EXPECT_EQ(to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(Signature(SigningKey(kSecret, "20150830", "us-east-1", "service"), to_sign),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

// The Authorization header of a GET of `url` signed as AWS's test suite signs it.
std::string SuiteAuthorization(const std::string& url) {
  HttpRequest request;
  request.url = url;
  const Status signed_ok = SignV4(&request, Credentials{"AKIDEXAMPLE", kSecret, "", {}},
                                  "us-east-1", "service", At20150830T123600Z());
  EXPECT_TRUE(signed_ok.ok()) << signed_ok.ToString();
  EXPECT_EQ(HeaderValue(request, "X-Amz-Date"), "20150830T123600Z");
  return HeaderValue(request, "Authorization");
}

TEST(SigV4, GetVanillaSignedRequest) {
  EXPECT_EQ(SuiteAuthorization("https://example.amazonaws.com/"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, GetVanillaQueryOrderKeyCase) {
  const std::string authorization =
      SuiteAuthorization("https://example.amazonaws.com/?Param2=value2&Param1=value1");
  EXPECT_NE(authorization.find(
                "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
            std::string::npos)
      << authorization;
}

TEST(SigV4, SigningKeyOfAwsIamExample) {
  EXPECT_EQ(Hex(SigningKey(kSecret, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}

TEST(SigV4, QueryPostWithSessionTokenMatchesBotocore) {
  HttpRequest request;
  request.method = "POST";
  request.url = "http://127.0.0.1:8080/";
  request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
  request.body =
      "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1=my%"
      "20group";
  // 2026-12-06T21:30:00Z
  ASSERT_TRUE(SignV4(&request, Credentials{"AKIDEXAMPLE", kSecret, "session/token+x=", {}},
                     "eu-west-1", "autoscaling", std::chrono::system_clock::from_time_t(1796592600))
                  .ok());
  EXPECT_EQ(HeaderValue(request, "X-Amz-Security-Token"), "session/token+x=");
  EXPECT_EQ(HeaderValue(request, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/eu-west-1/autoscaling/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
            "Signature=90a7ac831d2d2c85e40d41ab8de4f7570da907c7d0e6399b999113ac3cda0ab9");
}

TEST(SigV4, UriEncodeKeepsOnlyUnreserved) {
  EXPECT_EQ(UriEncode("a-b_c.d~e f/g+h=", false), "a-b_c.d~e%20f%2Fg%2Bh%3D");
  EXPECT_EQ(UriEncode("/a b/", true), "/a%20b/");
}

TEST(SigV4, CanonicalQuerySortsAndEncodesOnce) {
  EXPECT_EQ(CanonicalQuery("b=2&a=x%20y&a=1&c"), "a=1&a=x%20y&b=2&c=");
  EXPECT_EQ(CanonicalQuery(""), "");
}

TEST(SigV4, MissingKeysAreRefused) {
  HttpRequest request;
  request.url = "https://example.amazonaws.com/";
  EXPECT_EQ(SignV4(&request, Credentials{}, "us-east-1", "ec2", At20150830T123600Z()).code(),
            Code::kInvalidArgument);
}

TEST(SigV4, BadUrlIsRefused) {
  HttpRequest request;
  request.url = "ftp://example.amazonaws.com/";
  EXPECT_FALSE(
      SignV4(&request, Credentials{"a", "b", "", {}}, "us-east-1", "ec2", At20150830T123600Z())
          .ok());
}

}  // namespace
}  // namespace dolmen::aws
