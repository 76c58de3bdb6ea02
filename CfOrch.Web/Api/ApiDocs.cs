using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace CfOrch.Web.Api;

/// <summary>
/// Request bodies for the OpenAPI document only. The endpoints read their bodies themselves (for precise errors), and
/// <c>Accepts</c> metadata would make routing refuse a request with another content type with a misleading 404.
/// </summary>
public static class ApiDocs
{
    public static RouteHandlerBuilder DocumentsBody<T>(this RouteHandlerBuilder builder, string contentType)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.WithMetadata(new BodyDoc(typeof(T), contentType));
    }

    public static OpenApiOptions AddBodyDocs(this OpenApiOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.AddOperationTransformer(async (operation, context, ct) =>
        {
            if (context.Description.ActionDescriptor.EndpointMetadata.OfType<BodyDoc>().FirstOrDefault() is not { } doc)
            {
                return;
            }

            var schema = await context.GetOrCreateSchemaAsync(doc.Type, null, ct);
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = false,
                Content = new Dictionary<string, OpenApiMediaType> { [doc.ContentType] = new() { Schema = schema } },
            };
        });
        return options;
    }

    private sealed record BodyDoc(Type Type, string ContentType);
}
