/* The block in the editor: a preview rendered by the server (no build step: WordPress's own globals). */
(function (blocks, element, serverSideRender, blockEditor, components) {
	var el = element.createElement;
	blocks.registerBlockType('berita-lainnya/box', {
		edit: function (props) {
			return el(
				'div',
				blockEditor.useBlockProps(),
				el(blockEditor.InspectorControls, null,
					el(components.PanelBody, { title: 'Berita Lainnya' },
						el(components.RangeControl, {
							label: 'Items (0: the settings\' k)',
							min: 0,
							max: 20,
							value: props.attributes.k,
							onChange: function (value) { props.setAttributes({ k: value || 0 }); }
						})
					)
				),
				el(serverSideRender, {
					block: 'berita-lainnya/box',
					attributes: props.attributes,
					urlQueryArgs: { post_id: props.context && props.context.postId }
				})
			);
		},
		save: function () { return null; }
	});
})(window.wp.blocks, window.wp.element, window.wp.serverSideRender, window.wp.blockEditor, window.wp.components);
