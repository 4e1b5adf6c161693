using System.Text.Json.Nodes;
using Serverless.Core.Api;

namespace Serverless.Core.Tests.Api;

public class RequestValidatorTests
{
    private static JsonObject Validate(string operation, string json)
        => RequestValidator.Validate(ServiceModel.Ecs, ServiceModel.Ecs.InputOf(operation)!, JsonNode.Parse(json)!.AsObject());

    [Fact]
    public void A_valid_request_passes_with_its_members_intact()
    {
        var clean = Validate("DescribeClusters", """{"clusters":["a","b"],"include":["TAGS"]}""");
        Assert.Equal("""{"clusters":["a","b"],"include":["TAGS"]}""", clean.ToJsonString());
    }

    [Fact]
    public void Members_the_model_does_not_know_are_dropped()
    {
        var clean = Validate("ListClusters", """{"maxResults":5,"bogus":true}""");
        Assert.Equal("""{"maxResults":5}""", clean.ToJsonString());
    }

    [Fact]
    public void Json_null_counts_as_absent()
    {
        var clean = Validate("ListClusters", """{"nextToken":null}""");
        Assert.Empty(clean);
    }

    [Theory]
    [InlineData("ListClusters", """{"maxResults":"ten"}""", "STRING_VALUE can not be converted to an Integer")]
    [InlineData("ListClusters", """{"maxResults":1.5}""", "NUMBER_VALUE can not be converted to an Integer")]
    [InlineData("DescribeClusters", """{"clusters":"a"}""", "STRING_VALUE can not be converted to a list")]
    [InlineData("DescribeClusters", """{"clusters":[{"a":1}]}""", "Start of structure or map found where not expected")]
    [InlineData("CreateCluster", """{"clusterName":["x"]}""", "Start of list found where not expected")]
    [InlineData("CreateCluster", """{"clusterName":true}""", "BOOLEAN_VALUE can not be converted to a String")]
    public void A_member_of_the_wrong_json_type_is_a_serialization_exception(string operation, string json, string message)
    {
        var error = Assert.Throws<SerializationException>(() => Validate(operation, json));
        Assert.Equal("SerializationException", error.ErrorType);
        Assert.StartsWith(message, error.Message);
    }

    [Fact]
    public void A_missing_required_member_names_the_member()
    {
        var error = Assert.Throws<InvalidParameterException>(() => Validate("RegisterTaskDefinition", """{"family":"web"}"""));
        Assert.Equal("1 validation error detected: Value null at 'containerDefinitions' failed to satisfy constraint: Member must not be null", error.Message);
    }

    [Fact]
    public void A_missing_required_member_inside_a_list_item_gives_its_path()
    {
        var error = Assert.Throws<InvalidParameterException>(() =>
            Validate("PutAttributes", """{"attributes":[{"name":"a"},{"value":"v"}]}"""));
        Assert.Contains("Value null at 'attributes.2.member.name'", error.Message);
    }

    [Fact]
    public void A_value_outside_the_enum_lists_the_allowed_values()
    {
        var error = Assert.Throws<InvalidParameterException>(() =>
            Validate("RegisterTaskDefinition", """{"family":"f","containerDefinitions":[],"networkMode":"mesh"}"""));
        Assert.Contains("Value 'mesh' at 'networkMode' failed to satisfy constraint: Member must satisfy enum value set: [", error.Message);
        Assert.Contains("bridge", error.Message);
    }

    [Fact]
    public void Length_and_pattern_constraints_of_the_model_apply()
    {
        var longKey = new string('k', 129);
        var error = Assert.Throws<InvalidParameterException>(() =>
            Validate("TagResource", $$"""{"resourceArn":"arn","tags":[{"key":"{{longKey}}","value":"v"},{"key":"bad*","value":"v"}]}"""));
        Assert.StartsWith("2 validation errors detected: ", error.Message);
        Assert.Contains("Member must have length less than or equal to 128", error.Message);
        Assert.Contains("Member must satisfy regular expression pattern", error.Message);
    }

    [Fact]
    public void Every_operation_of_both_models_validates_without_crashing()
    {
        foreach (var model in new[] { ServiceModel.Ecs, ServiceModel.AutoScaling })
        {
            foreach (var operation in model.Operations)
            {
                var input = model.InputOf(operation);
                if (input is null) continue;
                // Parsed from text, as every request body is. A pattern may still refuse the
                // placeholder values: that is validation working, not the model walk failing.
                var body = JsonNode.Parse(PermissiveBody(model, input).ToJsonString())!.AsObject();
                try { RequestValidator.Validate(model, input, body); }
                catch (InvalidParameterException e) { Assert.Contains("regular expression pattern", e.Message); }
            }
        }
    }

    [Fact]
    public void Every_pattern_of_the_models_compiles_as_a_dotnet_regex()
    {
        var patterns = new[] { ServiceModel.Ecs, ServiceModel.AutoScaling }.SelectMany(m => m.Shapes).Where(s => s.PatternText is not null);
        Assert.All(patterns, shape => Assert.NotNull(shape.Pattern));
    }

    // A body with every required member present as an empty-ish value of the right type, so
    // walking the whole model exercises every shape reference without throwing.
    private static JsonObject PermissiveBody(ServiceModel model, Shape shape)
    {
        var body = new JsonObject();
        foreach (var required in shape.Required)
        {
            var member = model.Shape(shape.Members[required]);
            body[required] = member.Type switch
            {
                "string" => member.Enum?.First() ?? new string('a', (int)(member.Min ?? 1)),
                "integer" or "long" => (int)(member.Min ?? 1),
                "double" => member.Min ?? 1.0,
                "boolean" => true,
                "timestamp" => 0,
                "list" => new JsonArray(),
                "map" => new JsonObject(),
                _ => member.IsDocument ? new JsonObject() : PermissiveBody(model, member),
            };
        }
        return body;
    }

    [Theory]
    [InlineData("RunTask", """{"taskDefinition":"web","launchType":"SOMETHING"}""")]
    [InlineData("CreateService", """{"serviceName":"web","launchType":"ec2"}""")]
    [InlineData("ListTasks", """{"launchType":"SPOT"}""")]
    public void An_unknown_launch_type_gets_ecs_own_message(string operation, string json)
    {
        var error = Assert.Throws<InvalidParameterException>(() => Validate(operation, json));
        Assert.Equal("launch type should be one of [EC2,FARGATE,EXTERNAL,MANAGED_INSTANCES]", error.Message);
    }
}
